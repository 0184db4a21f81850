/**
 * Hedging in the style of "The Tail at Scale" (issue #3 item 9): worker processes whose service
 * time is heavy-tailed, open-loop Poisson load at about 30% and 80% of the pool's measured
 * capacity, and one row per way of submitting: no hedge, a hedge at the no-hedge row's p95, the
 * 'auto' delay with the default budget, and tied copies.
 *
 *   node dist/hedging.js [--quick] [--json <file>] [--requests <n>] [--requests-high <n>]
 *                        [--seed <n>] [--hedge-max <n>] [--median-ms <ms>] [--sigma <s>]
 *                        [--only low|high] [--low <share>] [--high <share>] [--correlated]
 *
 * `--low`/`--high` change the two loads (shares of the measured capacity, 0.3 and 0.8);
 * `--correlated` makes every copy of a slow request slow (the targets assume it is not).
 *
 * Starts its own redis-server and worker processes (hedging-worker.js). `--quick` runs every row
 * with about a hundred requests, in seconds, and exits non-zero only when something fails (a
 * request, a worker process, Redis), never on a timing. The doc of the results: docs/hedging.md.
 */
import { writeFileSync } from 'node:fs'
import { availableParallelism, cpus } from 'node:os'
import { parseArgs } from 'node:util'
import { DISPATCHER_DEFAULTS, poolKeys } from 'hedgeyard'
import { Redis } from 'ioredis'
import { startFleet } from './hedging-fleet.js'
import { checksTable, checkTargets, detailTable, mainTable, type RowResult } from './hedging-report.js'
import { type Bench, type Calibration, calibrate, runLoad } from './hedging-rows.js'
import { nominalMeanMs, SERVICE_TIME_DEFAULTS, type ServiceTime } from './hedging-service.js'
import { startRedisServer } from './redis-server.js'

const RUN_DEFAULTS = Object.freeze({
  processes: 4,
  concurrency: 4,
  queueCapacity: 64,
  lowLoad: 0.3,
  highLoad: 0.8,
  /** Measured requests per row at the low load: p99.9 is then the 10th slowest. */
  requests: 10_000,
  /** Measured requests per row at the high load, whose targets are about p50 and extra requests. */
  requestsHigh: 6_000,
  /** Discarded requests before each row, sent at the row's rate with the row's options. */
  warmupRequests: 600,
  calibrationRequests: 4_000,
  calibrationInFlight: 16,
  hedgeMaxAttempts: 2,
  seed: 1,
  quietLoad: 0.3,
  quietWaitMs: 5_000,
  maxOtherLoad: 0.3,
  /** Rows measured again because other processes disturbed them, at most, in the whole run. */
  maxReruns: 2,
})

const QUICK = Object.freeze({
  requests: 100,
  requestsHigh: 100,
  warmupRequests: 50,
  calibrationRequests: 200,
  quietWaitMs: 0,
  maxReruns: 0,
})

function option(name: string, value: string | undefined, fallback: number, isInt: boolean): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!(n > 0) || (isInt && !Number.isInteger(n)))
    throw new Error(`--${name} must be a positive ${isInt ? 'integer' : 'number'} (got ${value})`)
  return n
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      requests: { type: 'string' },
      'requests-high': { type: 'string' },
      seed: { type: 'string' },
      'hedge-max': { type: 'string' },
      'median-ms': { type: 'string' },
      sigma: { type: 'string' },
      only: { type: 'string' },
      low: { type: 'string' },
      high: { type: 'string' },
      correlated: { type: 'boolean', default: false },
    },
  })
  if (values.only !== undefined && values.only !== 'low' && values.only !== 'high')
    throw new Error(`--only must be 'low' or 'high' (got ${values.only})`)
  const base = values.quick ? { ...RUN_DEFAULTS, ...QUICK } : RUN_DEFAULTS
  const settings = {
    ...base,
    requests: option('requests', values.requests, base.requests, true),
    requestsHigh: option('requests-high', values['requests-high'], base.requestsHigh, true),
    seed: option('seed', values.seed, base.seed, true),
    hedgeMaxAttempts: option('hedge-max', values['hedge-max'], base.hedgeMaxAttempts, true),
    lowLoad: option('low', values.low, base.lowLoad, false),
    highLoad: option('high', values.high, base.highLoad, false),
  }
  const dist: ServiceTime = {
    ...SERVICE_TIME_DEFAULTS,
    medianMs: option('median-ms', values['median-ms'], SERVICE_TIME_DEFAULTS.medianMs, false),
    sigma: option('sigma', values.sigma, SERVICE_TIME_DEFAULTS.sigma, false),
    isCorrelated: values.correlated === true,
  }

  const startedAt = Date.now()
  const command = ['node', 'packages/bench/dist/hedging.js', ...process.argv.slice(2)].join(' ')
  const server = await startRedisServer()
  const onSignal = () => void server.stop().finally(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const machine = {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    node: process.version,
    redis: server.version,
  }
  const slots = settings.processes * settings.concurrency
  console.log(
    `hedging: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, Redis ${machine.redis}\n` +
      `workers: ${settings.processes} processes x 1 worker x concurrency ${settings.concurrency} = ${slots} slots, ` +
      `queue capacity ${settings.queueCapacity}\n` +
      `service time: lognormal, median ${dist.medianMs} ms, sigma ${dist.sigma}; ${dist.slowShare * 100}% of calls ` +
      `(${dist.isCorrelated ? 'CORRELATED: every copy of a slow request is slow' : 'independently per call'}) ` +
      `${dist.slowMin}-${dist.slowMax}x slower (nominal mean ${nominalMeanMs(dist).toFixed(2)} ms)`,
  )

  const pool = 'hedging'
  const conn = new Redis(server.url, { maxRetriesPerRequest: 1 })
  const fleet = await startFleet(settings.processes, {
    redis: server.url,
    pool,
    count: 1,
    concurrency: settings.concurrency,
    queueCapacity: settings.queueCapacity,
    dist,
  })
  const bench: Bench = {
    url: server.url,
    pool,
    keys: poolKeys(DISPATCHER_DEFAULTS.prefix, pool),
    conn,
    fleet,
  }
  const rows: RowResult[] = []
  let calibration: Calibration | undefined
  let failures = 0
  const reruns = { left: settings.maxReruns }
  try {
    calibration = await calibrate(bench, settings.calibrationRequests, settings.calibrationInFlight)
    const capacityPerSec = (slots / calibration.meanServiceMs) * 1_000
    console.log(
      `calibration: ${calibration.runs} runs, measured mean service time ${calibration.meanServiceMs.toFixed(2)} ms ` +
        `-> capacity ${capacityPerSec.toFixed(0)} requests/s`,
    )
    const loads = [
      { name: 'low', utilisation: settings.lowLoad, requests: settings.requests },
      { name: 'high', utilisation: settings.highLoad, requests: settings.requestsHigh },
    ].filter((l) => values.only === undefined || l.name === values.only)
    for (const { utilisation, requests } of loads) {
      const ratePerSec = utilisation * capacityPerSec
      console.log(
        `\nload ${Math.round(utilisation * 100)}%: ${ratePerSec.toFixed(0)} requests/s, ` +
          `${settings.warmupRequests} warm-up + ${requests} measured requests per row`,
      )
      for (const r of await runLoad(bench, {
        utilisation,
        ratePerSec,
        requests,
        warmupRequests: settings.warmupRequests,
        seed: settings.seed,
        hedgeMaxAttempts: settings.hedgeMaxAttempts,
        quietLoad: settings.quietLoad,
        quietWaitMs: settings.quietWaitMs,
        maxOtherLoad: settings.maxOtherLoad,
        reruns,
      })) {
        rows.push(r)
        const failed = r.requests - r.succeeded
        if (failed > 0) {
          failures++
          console.error(`  PROBLEM: ${r.row}: ${failed} requests failed: ${JSON.stringify(r.errors)}`)
        }
      }
    }
  } finally {
    await fleet.close()
    conn.disconnect()
    await server.stop()
  }

  const budget = {
    ratio: DISPATCHER_DEFAULTS.hedging.budgetRatio,
    burst: DISPATCHER_DEFAULTS.hedging.budgetBurst,
  }
  const checks = checkTargets(rows, settings.lowLoad, settings.highLoad, budget)
  console.log("\nLatency from each request's scheduled send time. Extra requests: copies queued beyond one")
  console.log(
    'per request. Extra work: handler busy time / busy time of the no-hedge row at that load - 1.\n',
  )
  console.log(mainTable(rows))
  console.log(
    '\nhedge at p95: delay = the no-hedge p95 at that load, with budgetRatio 1 and budgetBurst 1,000,000 ' +
      '(no budget effect).\nauto + budget: the default hedging options (p95 of recent latencies, budget ' +
      `${budget.ratio * 100}%, burst ${budget.burst}); the delay shown is the one it had at the end. ` +
      `Race rows: hedge.maxAttempts ${settings.hedgeMaxAttempts}.`,
  )
  console.log("\nDetails (hedges: the dispatcher's counters; runs: handler runs in the worker processes)\n")
  console.log(detailTable(rows))
  console.log(
    `\nTargets of issue #3 item 9${values.quick ? ' (quick run: too few requests to mean anything)' : ''}\n`,
  )
  console.log(checksTable(checks))
  if (values.json !== undefined) {
    const run = {
      command,
      durationS: Math.round((Date.now() - startedAt) / 1_000),
      reruns: settings.maxReruns - reruns.left,
    }
    const out = { run, machine, settings, serviceTime: dist, calibration, rows, checks }
    writeFileSync(values.json, `${JSON.stringify(out, null, 2)}\n`)
    console.log(`\nresults written to ${values.json}`)
  }
  console.log(
    `\n${command}: ${Math.round((Date.now() - startedAt) / 1_000)} s, ` +
      `${settings.maxReruns - reruns.left} row(s) measured again`,
  )
  if (failures > 0) {
    console.error(`\n${failures} row(s) had failed requests: see PROBLEM lines above`)
    return 1
  }
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  },
)
