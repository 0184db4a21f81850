/**
 * What the model sees: 3 producer processes and 6 workers (3 processes) against the Gemini
 * simulator with a quota of 50 requests a second, first without a pool quota, then with one
 * (48/s, burst 2), then with the quota through a 5-second outage of the model. It writes the
 * requests per second the simulator saw as an SVG (docs/bench/limits.svg) and the figures as JSON
 * (docs/bench/limits.json), and prints them.
 *
 *   node packages/bench/dist/limits.js [--quick] [--no-write]
 */
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { type SecondCounts, startFakeGemini } from '@hedgeyard/genai'
import { startRedisServer } from '@hedgeyard/redis-server'
import { clearPoolLimits, inspectPool, setPoolLimits } from 'hedgeyard'
import { checkArgs, startCli } from './cli.js'

const DOCS = new URL('../../../docs/bench/', import.meta.url)
const PRODUCER = fileURLToPath(new URL('./runners/quota-producer.js', import.meta.url))
checkArgs('limits.js', 'usage: node packages/bench/dist/limits.js [--quick] [--no-write]', {
  quick: { type: 'boolean' },
  'no-write': { type: 'boolean' },
})
const args = process.argv.slice(2)
const isQuick = args.includes('--quick')
const shouldWrite = !args.includes('--no-write') && !isQuick
/** Seconds of load per phase, requests per second each of the 3 producers offers. */
const SECONDS = isQuick ? 3 : 12
const RATE = 30
const MODEL_QUOTA = 50
const POOL_QUOTA = { limit: 48, periodMs: 1_000, burst: 2 }

interface ProducerOutcome {
  ok: number
  errors: Record<string, number>
}

/** The 3 producer processes of a phase, each offering RATE requests a second for SECONDS. */
function producers(redis: string, pool: string, retries: number): Promise<ProducerOutcome[]> {
  return Promise.all(
    [0, 1, 2].map(async (i) => {
      const args = [PRODUCER, redis, pool, `p${i}`, String(SECONDS * RATE), String(RATE), String(retries)]
      const { stdout } = await promisify(execFile)(process.execPath, args)
      return JSON.parse(stdout) as ProducerOutcome
    }),
  )
}

/** The phase's seconds from its first request, each second's requests and outcomes. */
function series(perSecond: SecondCounts[]): SecondCounts[] {
  const first = perSecond.find((s) => s.requests > 0)?.second ?? 0
  return perSecond.filter((s) => s.second >= first).map((s) => ({ ...s, second: s.second - first }))
}

function svg(phases: { label: string; color: string; points: SecondCounts[] }[], quota: number): string {
  const w = 720
  const h = 320
  const left = 50
  const bottom = 40
  const top = 30
  const maxX = Math.max(...phases.flatMap((p) => p.points.map((s) => s.second)), 1)
  const maxY = Math.max(quota * 2, ...phases.flatMap((p) => p.points.map((s) => s.requests)))
  const x = (s: number) => left + ((w - left - 20) * s) / maxX
  const y = (v: number) => h - bottom - ((h - bottom - top) * v) / maxY
  const lines = phases.map(
    (p, i) =>
      `<polyline fill="none" stroke="${p.color}" stroke-width="2" points="${p.points.map((s) => `${x(s.second).toFixed(1)},${y(s.requests).toFixed(1)}`).join(' ')}"/>` +
      `<text x="${w - 250}" y="${top + 16 * i}" fill="${p.color}" font-size="12">${p.label}</text>`,
  )
  const ticks = Array.from({ length: 5 }, (_, i) => Math.round((maxY * i) / 4))
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="18" font-size="13">Requests per second the model saw (its quota: ${quota}/s)</text>
<line x1="${left}" y1="${y(quota)}" x2="${w - 20}" y2="${y(quota)}" stroke="#999" stroke-dasharray="4 3"/>
<text x="${left + 4}" y="${y(quota) - 4}" font-size="11" fill="#666">model quota ${quota}/s</text>
${ticks.map((t) => `<text x="${left - 6}" y="${y(t) + 4}" font-size="11" text-anchor="end">${t}</text>`).join('\n')}
<line x1="${left}" y1="${h - bottom}" x2="${w - 20}" y2="${h - bottom}" stroke="black"/>
<text x="${(w + left) / 2}" y="${h - 10}" font-size="12" text-anchor="middle">seconds into the run</text>
${lines.join('\n')}
</svg>
`
}

async function main(): Promise<void> {
  const redis = await startRedisServer()
  const sim = await startFakeGemini({
    medianMs: 10,
    sigma: 0,
    tokensPerSecond: 5_000,
    replyWords: 8,
    quotaRps: MODEL_QUOTA,
  })
  const pool = 'limits'
  const ref = { redis: redis.url, pool }
  const env = { GENAI_BASE_URL: sim.url, GEMINI_API_KEY: 'project-key-0123456789' }
  const workers = []
  for (let i = 0; i < 3; i++) {
    const args = ['worker', '--redis', redis.url, '--pool', pool, '--handler', '@hedgeyard/genai']
    args.push('--id-prefix', `w${i}`, '--count', '2', '--concurrency', '16', '--lease-ms', '1500')
    args.push('--breaker-failures', '3', '--breaker-cool-off-ms', '300')
    workers.push((await startCli(args, /workers started/, env)).child)
  }
  const offered = 3 * RATE
  process.stdout.write(
    `${offered} requests/s offered by 3 producers for ${SECONDS} s, model quota ${MODEL_QUOTA}/s\n`,
  )

  sim.reset()
  const free = await producers(redis.url, pool, 1)
  const freeSeries = series(sim.stats().perSecond)

  await setPoolLimits(ref, { rate: POOL_QUOTA })
  sim.reset()
  const held = await producers(redis.url, pool, 3)
  const heldSeries = series(sim.stats().perSecond)

  sim.reset()
  const outageAtS = Math.min(3, SECONDS - 1)
  const outageMs = isQuick ? 1_000 : 5_000
  const outageRun = producers(redis.url, pool, 2)
  await new Promise((r) => setTimeout(r, outageAtS * 1_000))
  const outage = sim.outage({ ms: outageMs })
  let breakersOpen = 0
  while (Date.now() < outage.untilMs) {
    breakersOpen = Math.max(breakersOpen, (await inspectPool(ref)).filter((w) => w.breaker === 'open').length)
    await new Promise((r) => setTimeout(r, 100))
  }
  const outageOutcomes = await outageRun
  const outagePerSecond = sim.stats().perSecond
  const firstBack = outagePerSecond.find((s) => (s.second + 1) * 1_000 > outage.untilMs && s.accepted > 0)
  await clearPoolLimits(ref)

  const errors = (o: ProducerOutcome[]) =>
    o.reduce((sum, p) => sum + Object.values(p.errors).reduce((a, b) => a + b, 0), 0)
  const peak = (s: SecondCounts[]) => Math.max(...s.map((x) => x.requests))
  const figures = {
    offeredPerSecond: offered,
    modelQuota: MODEL_QUOTA,
    poolQuota: POOL_QUOTA,
    withoutQuota: {
      peakPerSecond: peak(freeSeries),
      model429: freeSeries.reduce((a, s) => a + s.rateLimited, 0),
      callerErrors: errors(free),
    },
    withQuota: {
      peakPerSecond: peak(heldSeries),
      model429: heldSeries.reduce((a, s) => a + s.rateLimited, 0),
      callerErrors: errors(held),
    },
    outage: {
      seconds: outageMs / 1_000,
      breakersOpenAtOnce: breakersOpen,
      modelRequestsPerSecondDuring: outagePerSecond
        .filter(
          (s) => s.second * 1_000 >= outage.untilMs - outageMs && (s.second + 1) * 1_000 <= outage.untilMs,
        )
        .map((s) => s.requests),
      servingAgainAfterMs: firstBack ? Math.max(0, firstBack.second * 1_000 - outage.untilMs) : null,
      callerErrors: errors(outageOutcomes),
    },
  }
  process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`)
  if (shouldWrite) {
    writeFileSync(new URL('limits.json', DOCS), `${JSON.stringify(figures, null, 2)}\n`)
    writeFileSync(
      new URL('limits.svg', DOCS),
      svg(
        [
          { label: 'without a pool quota', color: '#d62728', points: freeSeries },
          {
            label: `pool quota ${POOL_QUOTA.limit}/s, burst ${POOL_QUOTA.burst}`,
            color: '#1f77b4',
            points: heldSeries,
          },
        ],
        MODEL_QUOTA,
      ),
    )
    process.stdout.write('wrote docs/bench/limits.svg and docs/bench/limits.json\n')
  }
  for (const w of workers) w.kill('SIGTERM')
  await sim.close()
  await redis.stop()
  process.exit(0)
}

main().catch((err: unknown) => {
  process.stderr.write(`limits benchmark failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
