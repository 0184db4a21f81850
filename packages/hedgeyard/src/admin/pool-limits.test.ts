import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type Handler, startWorkers } from '../index.js'
import { Dispatcher } from '../producer/dispatcher.js'
import { isHedgeyardError } from '../protocol/errors.js'
import { poolKeys } from '../protocol/keys.js'
import { listDeadLetters, retryDeadLetters } from './dead-letters.js'
import { clearPoolLimits, getPoolLimits, setPoolLimits } from './pool-limits.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

/** Records the time (ms, this host) each job started, for checking what the upstream would see. */
function recorder(): { handler: Handler; starts: number[] } {
  const starts: number[] = []
  return {
    starts,
    handler: () => {
      starts.push(Date.now())
      return 'ok'
    },
  }
}

async function pool(handler: Handler): Promise<string> {
  const name = uniquePool('limits')
  const group = await startWorkers({ redis: redisUrl(), pool: name, handler, count: 2, concurrency: 50 })
  closers.push(() => group.close())
  return name
}

function dispatcher(name: string): Dispatcher {
  const d = new Dispatcher({ redis: redisUrl(), pool: name })
  closers.push(() => d.close())
  return d
}

/** The most starts in any window of `windowMs`. */
function busiest(starts: number[], windowMs: number): number {
  const sorted = [...starts].sort((a, b) => a - b)
  let best = 0
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= windowMs) j++
    best = Math.max(best, i - j + 1)
  }
  return best
}

describe('pool quotas', () => {
  it('lets exactly the burst through at once and refuses the rest with RATE_LIMITED and retryAfterMs', async () => {
    const rec = recorder()
    const name = await pool(rec.handler)
    await setPoolLimits({ redis: redisUrl(), pool: name }, { rate: { limit: 5, periodMs: 60_000, burst: 4 } })
    // Three producers, as on three hosts: one quota for all of them.
    const ds = [dispatcher(name), dispatcher(name), dispatcher(name)]
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        (ds[i % 3] as Dispatcher).submit({ i }, { onRateLimited: 'reject' }).then(
          () => 'ok',
          (err: unknown) => err,
        ),
      ),
    )
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(4)
    const refused = outcomes.filter((o) => o !== 'ok')
    expect(refused).toHaveLength(8)
    for (const err of refused) {
      expect(isHedgeyardError(err, 'RATE_LIMITED')).toBe(true)
      // 5 per minute: the next slot is 12 s away, give or take the staggering of refusals.
      expect((err as { retryAfterMs: number }).retryAfterMs).toBeGreaterThan(10_000)
    }
    expect(rec.starts).toHaveLength(4)
  })

  it('tells the requests one call refuses to come back one after the other, a period share apart', async () => {
    const name = await pool(recorder().handler)
    // Ten a minute: one every 6 s.
    await setPoolLimits({ redis: redisUrl(), pool: name }, { rate: { limit: 10, periodMs: 60_000 } })
    const d = dispatcher(name)
    // Submits of one event-loop turn go in one dispatch call.
    const outcomes = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        d.submit({ i }, { onRateLimited: 'reject' }).catch((err: unknown) => err),
      ),
    )
    expect(outcomes.filter((o) => o === 'ok')).toHaveLength(1)
    const waits = outcomes
      .filter((o) => o !== 'ok')
      .map((err) => (err as { retryAfterMs: number }).retryAfterMs)
      .sort((a, b) => a - b)
    expect(waits).toHaveLength(3)
    for (const [i, wait] of waits.entries()) {
      expect(wait).toBeGreaterThan((i + 1) * 6_000 - 1_000)
      expect(wait).toBeLessThanOrEqual((i + 1) * 6_000)
    }
  })

  it("with 'wait', runs every request, never faster than the quota over any second", async () => {
    const rec = recorder()
    const name = await pool(rec.handler)
    await setPoolLimits({ redis: redisUrl(), pool: name }, { rate: { limit: 20, periodMs: 1_000, burst: 2 } })
    const ds = [dispatcher(name), dispatcher(name)]
    const started = Date.now()
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (ds[i % 2] as Dispatcher).submit({ i }, { timeoutMs: 10_000 })),
    )
    expect(results).toEqual(Array(30).fill('ok'))
    // 20 per second with a burst of 2: 30 requests take at least 1.4 s, and no second sees more
    // than 20 + 2 starts (a slow machine only spreads them further).
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400)
    expect(busiest(rec.starts, 1_000)).toBeLessThanOrEqual(22)
    const stats = (ds[0] as Dispatcher).stats().rateLimited + (ds[1] as Dispatcher).stats().rateLimited
    expect(stats).toBeGreaterThan(0)
  })

  it("charges a cost budget by each submit's cost", async () => {
    const rec = recorder()
    const name = await pool(rec.handler)
    await setPoolLimits(
      { redis: redisUrl(), pool: name },
      { cost: { limit: 1_000, periodMs: 60_000, burst: 100 } },
    )
    const d = dispatcher(name)
    await expect(d.submit({}, { cost: 60, onRateLimited: 'reject' })).resolves.toBe('ok')
    await expect(d.submit({}, { cost: 30, onRateLimited: 'reject' })).resolves.toBe('ok')
    // 90 of the burst of 100 are spent: 30 more do not fit, 10 do.
    await expect(d.submit({}, { cost: 30, onRateLimited: 'reject' })).rejects.toMatchObject({
      code: 'RATE_LIMITED',
    })
    await expect(d.submit({}, { cost: 10, onRateLimited: 'reject' })).resolves.toBe('ok')
    await expect(d.submit({}, { cost: 0 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('cost'),
    })
  })

  it('corrects the cost budget by what the worker reports a job really cost', async () => {
    const name = uniquePool('limits-cost')
    const group = await startWorkers({
      redis: redisUrl(),
      pool: name,
      handler: (req, ctx) => {
        ctx.reportCost((req as { used: number }).used)
        return 'ok'
      },
    })
    closers.push(() => group.close())
    await setPoolLimits(
      { redis: redisUrl(), pool: name },
      { cost: { limit: 100, periodMs: 3_600_000, burst: 100 } },
    )
    const d = dispatcher(name)
    // Charged 60 at dispatch, it used 10: 90 of the 100 are left once the correction lands.
    await expect(d.submit({ used: 10 }, { cost: 60, onRateLimited: 'reject' })).resolves.toBe('ok')
    await eventually(
      () =>
        d.submit({ used: 80 }, { cost: 80, onRateLimited: 'reject' }).then(
          () => true,
          () => false,
        ),
      5_000,
    )
    // Charged 5, it used 10: the budget is now spent (10 + 80 + 10), and 5 more do not fit.
    await expect(d.submit({ used: 10 }, { cost: 5, onRateLimited: 'reject' })).resolves.toBe('ok')
    await eventually(
      () =>
        d.submit({ used: 1 }, { cost: 5, onRateLimited: 'reject' }).then(
          () => false,
          (e: { code: string }) => e.code === 'RATE_LIMITED',
        ),
      5_000,
    )
    // A cost that is not a whole number fails the job, naming reportCost.
    await clearPoolLimits({ redis: redisUrl(), pool: name })
    await expect(d.submit({ used: -1 }, { cost: 1 })).rejects.toMatchObject({
      code: 'HANDLER_ERROR',
      message: expect.stringContaining('reportCost'),
    })
  })

  it('charges nothing for a submit refused with NO_WORKERS or SATURATED', async () => {
    const name = uniquePool('limits-refused')
    const ref = { redis: redisUrl(), pool: name }
    // Two requests a minute: a refused submit that took a unit would leave the last one none.
    await setPoolLimits(ref, { rate: { limit: 2, periodMs: 60_000, burst: 2 } })
    const d = dispatcher(name)
    const reject = { onRateLimited: 'reject', onSaturated: 'reject' } as const
    for (let i = 0; i < 3; i++)
      await expect(d.submit({}, reject)).rejects.toMatchObject({ code: 'NO_WORKERS' })
    let release = () => {}
    const held = new Promise<void>((resolve) => {
      release = resolve
    })
    const group = await startWorkers({
      redis: redisUrl(),
      pool: name,
      handler: async (p: { hold?: boolean }) => {
        if (p.hold) await held
        return 'ok'
      },
      concurrency: 1,
      queueCapacity: 0,
    })
    closers.push(() => group.close())
    const first = d.submit({ hold: true }, reject)
    await eventually(async () => (await c.zscore(poolKeys('hy', name).load, `${group.workerIds[0]}`)) === '1')
    for (let i = 0; i < 3; i++)
      await expect(d.submit({}, reject)).rejects.toMatchObject({ code: 'SATURATED' })
    release()
    await expect(first).resolves.toBe('ok')
    await expect(d.submit({}, reject)).resolves.toBe('ok')
    await expect(d.submit({}, reject)).rejects.toMatchObject({ code: 'RATE_LIMITED' })
  })

  it('charges nothing for a dead letter retried, which runs while the quota is spent', async () => {
    const name = uniquePool('limits-dead')
    const ref = { redis: redisUrl(), pool: name }
    // A worker that takes small payloads only: a larger one becomes a dead letter.
    const group = await startWorkers({ ...ref, handler: () => 'ok', maxPayloadBytes: 20 })
    closers.push(() => group.close())
    const d = dispatcher(name)
    await setPoolLimits(ref, { rate: { limit: 1, periodMs: 60_000 } })
    await expect(d.submit({ pad: 'x'.repeat(50) })).rejects.toMatchObject({ code: 'DEAD_LETTERED' })
    await expect(d.submit({}, { onRateLimited: 'reject' })).rejects.toMatchObject({ code: 'RATE_LIMITED' })
    const state = await c.hgetall(poolKeys('hy', name).quota)
    const [letter] = await listDeadLetters(ref)
    const retried = await retryDeadLetters({ ...ref, deadIds: [letter?.deadId as string] })
    expect(retried).toHaveLength(1)
    expect(retried[0]?.workerId).toBe(group.workerIds[0])
    expect(await c.hgetall(poolKeys('hy', name).quota)).toEqual(state)
  })

  it('is stored with the pool, read back, and cleared', async () => {
    const name = uniquePool('limits-store')
    const ref = { redis: redisUrl(), pool: name }
    expect(await getPoolLimits(ref)).toEqual({})
    await setPoolLimits(ref, {
      rate: { limit: 50, periodMs: 1_000, burst: 10 },
      cost: { limit: 1e5, periodMs: 60_000 },
    })
    expect(await getPoolLimits(ref)).toEqual({
      rate: { limit: 50, periodMs: 1_000, burst: 10 },
      cost: { limit: 100_000, periodMs: 60_000, burst: 1 },
    })
    expect(await c.hgetall(poolKeys('hy', name).limits)).toMatchObject({ rate: '50', rate_period: '1000' })
    await expect(setPoolLimits(ref, { rate: { limit: 0, periodMs: 1_000 } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limits.rate.limit'),
    })
    await expect(setPoolLimits(ref, {})).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    // A limiter left out of a set is removed; clear removes the quota's state too.
    await setPoolLimits(ref, { rate: { limit: 5, periodMs: 1_000 } })
    expect(await getPoolLimits(ref)).toEqual({ rate: { limit: 5, periodMs: 1_000, burst: 1 } })
    await c.hset(poolKeys('hy', name).quota, 'rate', '1')
    expect(await clearPoolLimits(ref)).toBe(true)
    expect(await c.exists(poolKeys('hy', name).quota)).toBe(0)
    expect(await getPoolLimits(ref)).toEqual({})
    expect(await clearPoolLimits(ref)).toBe(false)
  })

  it('fails dispatch, naming the key, when the stored quota is not readable, rather than dropping it', async () => {
    const rec = recorder()
    const name = await pool(rec.handler)
    await c.hset(poolKeys('hy', name).limits, 'rate', 'lots', 'rate_period', '1000')
    const d = dispatcher(name)
    await expect(d.submit({})).rejects.toMatchObject({
      code: 'PROTOCOL_ERROR',
      message: expect.stringContaining(`${poolKeys('hy', name).limits}: rate`),
    })
    expect(rec.starts).toHaveLength(0)
    await clearPoolLimits({ redis: redisUrl(), pool: name })
    await expect(d.submit({})).resolves.toBe('ok')
  })
})
