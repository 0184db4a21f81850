import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { type FakeGemini, startFakeGemini } from '@hedgeyard/genai'
import { eventually, redisUrl, spawnWorker, uniquePool, type WorkerProcess } from '@hedgeyard/testing/helpers'
import { clearPoolLimits, inspectPool, setPoolLimits } from 'hedgeyard'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

/** The limits benchmark's producer process (packages/bench), the same in both. */
const PRODUCER = join(import.meta.dirname, '../packages/bench/dist/runners/quota-producer.js')

interface ProducerOutcome {
  name: string
  ok: number
  errors: Record<string, number>
  stats: { rateLimited: number; throttled: number; retriesSent: number; hedgesDenied: number }
}

/** Runs `n` producer processes, each sending `count` requests at `rate` per second; their outcomes. */
function producers(
  pool: string,
  n: number,
  count: number,
  rate: number,
  retries = 1,
): Promise<ProducerOutcome[]> {
  return Promise.all(
    Array.from({ length: n }, (_, i) => {
      const child = spawn(
        process.execPath,
        [PRODUCER, redisUrl(), pool, `p${i}`, String(count), String(rate), String(retries)],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      )
      let out = ''
      child.stdout.on('data', (d) => {
        out += d
      })
      return new Promise<ProducerOutcome>((resolve, reject) =>
        child.on('exit', (code) =>
          code === 0
            ? resolve(JSON.parse(out) as ProducerOutcome)
            : reject(new Error(`producer exited ${code}`)),
        ),
      )
    }),
  )
}

const errorsOf = (outcomes: ProducerOutcome[]) =>
  outcomes.reduce((sum, o) => sum + Object.values(o.errors).reduce((a, b) => a + b, 0), 0)

describe('respecting the upstream: 3 producer processes, 6 workers, a model with a quota of 50 requests/s', () => {
  const pool = uniquePool('upstream')
  const ref = { redis: redisUrl(), pool }
  let sim: FakeGemini
  const workers: WorkerProcess[] = []

  beforeAll(async () => {
    // One key for the whole pool, as one project's quota: 50 requests in any second.
    sim = await startFakeGemini({
      medianMs: 10,
      sigma: 0,
      tokensPerSecond: 5_000,
      replyWords: 8,
      quotaRps: 50,
    })
    for (let i = 0; i < 3; i++) {
      workers.push(
        await spawnWorker({
          pool,
          handler: '@hedgeyard/genai',
          idPrefix: `w${i}`,
          count: 2,
          concurrency: 16,
          extraArgs: ['--breaker-failures', '3', '--breaker-cool-off-ms', '300', '--lease-ms', '1500'],
          env: { GENAI_BASE_URL: sim.url, GEMINI_API_KEY: 'project-key-0123456789' },
        }),
      )
    }
  }, 60_000)
  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')))
    await sim?.close()
  })

  it('without a pool quota the model answers many 429s; with one, it sees no more than the quota plus the burst in a second, and no caller fails', async () => {
    // 3 x 30 = 90 requests a second offered for 4 s.
    sim.reset()
    const free = await producers(pool, 3, 120, 30)
    const freeStats = sim.stats()
    expect(freeStats.totals.rateLimited).toBeGreaterThan(0)
    // The model refused some (what the pool quota is there to prevent). Whether some second held
    // more than its 50 depends on how fast the refused workers' cooldowns let the rest through,
    // and on what a loaded host manages to offer of the 90 asked: not asserted.

    // A fifth under the model's 50: a job starts a little after its dispatch, and on a busy host
    // starts bunch up, so the model's own sliding second could refuse some, and each refusal
    // cools a worker down; with all six cooling at once a caller would see SATURATED. The
    // headroom keeps what the model counts inside its quota on a loaded host too.
    await setPoolLimits(ref, { rate: { limit: 40, periodMs: 1_000, burst: 2 } })
    try {
      // The free run's 429s left workers cooling and breakers open: the second run starts once
      // every worker takes jobs again, or its first requests would find no worker (SATURATED).
      await eventually(
        async () =>
          (await inspectPool(ref)).every((w) => w.alive && w.state === 'active' && w.breaker === 'closed'),
        20_000,
      )
      sim.reset()
      // Retried on another worker: a 429 the model still gives cools its worker and is not the caller's.
      const held = await producers(pool, 3, 120, 30, 5)
      const heldStats = sim.stats()
      expect(held.map((o) => o.errors)).toEqual([{}, {}, {}])
      expect(held.reduce((s, o) => s + o.ok, 0)).toBe(360)
      expect(errorsOf(held)).toBe(0)
      expect(heldStats.totals.rateLimited).toBeLessThan(freeStats.totals.rateLimited / 4)
      // The pool dispatches at most 40 + 2 in a second; the model counts arrivals, which lag their
      // dispatch by a few ms, unevenly (a worker that stalled sends a few of one second in the
      // next): its busiest second stays within its own 50.
      expect(Math.max(...heldStats.perSecond.map((s) => s.requests))).toBeLessThanOrEqual(50)
      // The producers waited for their slots instead of failing.
      expect(held.reduce((s, o) => s + o.stats.rateLimited, 0)).toBeGreaterThan(0)
      // Without the quota, some callers saw the model's 429 (or the cooldowns it caused).
      expect(errorsOf(free)).toBeGreaterThan(0)
    } finally {
      await clearPoolLimits(ref)
    }
  })

  it('during a 3 s outage the breakers open and the model sees few requests; the pool serves again within 1 s of its return', async () => {
    sim.reset()
    // 3 x 20 = 60 requests a second offered for 6 s, each retried once on another worker.
    const load = producers(pool, 3, 120, 20, 2)
    await new Promise((r) => setTimeout(r, 1_000))
    const outage = sim.outage({ ms: 3_000 })
    let sawOpen = false
    while (Date.now() < outage.untilMs) {
      if ((await inspectPool(ref)).some((w) => w.breaker === 'open')) sawOpen = true
      await new Promise((r) => setTimeout(r, 100))
    }
    const outcomes = await load
    const stats = sim.stats()
    expect(sawOpen).toBe(true)
    const outageSeconds = stats.perSecond.filter(
      (s) => s.second * 1_000 >= outage.untilMs - 3_000 && (s.second + 1) * 1_000 <= outage.untilMs,
    )
    const offeredPerSecond = 60
    // Breakers (and the producers' throttle) keep most of the offered load off a failing upstream.
    for (const s of outageSeconds) expect(s.requests).toBeLessThan(offeredPerSecond)
    // Served again within 1 s of its return: the second after the outage has successes.
    const after = stats.perSecond.find((s) => s.second === Math.floor(outage.untilMs / 1_000) + 1)
    expect(after?.accepted ?? 0).toBeGreaterThan(0)
    // Extra copies stayed within the hedging budget: retries are bounded by it.
    const submitted = 360
    const retries = outcomes.reduce((s, o) => s + o.stats.retriesSent, 0)
    expect(retries).toBeLessThanOrEqual(submitted * 0.1 + 3 * 10)
  })
})
