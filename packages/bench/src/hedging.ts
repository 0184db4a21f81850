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
 * Starts its own redis-server and worker processes (runners/hedging-worker.js). `--quick` runs every row
 * with about a hundred requests, in seconds, and exits non-zero only when something fails (a
 * request, a worker process, Redis), never on a timing. The doc of the results: docs/hedging.md.
 */
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { DISPATCHER_DEFAULTS, poolKeys } from 'hedgeyard'
import { Redis } from 'ioredis'
import { checkArgs, numberOption, type OptionSpec, runMain } from './cli.js'
import { checksTable, checkTargets, detailTable, mainTable, type RowResult } from './hedging-report.js'
import { type Bench, type Calibration, calibrate, runLoad, startFleet } from './hedging-rows.js'
import { nominalMeanMs, SERVICE_TIME_DEFAULTS, type ServiceTime } from './hedging-service.js'
import { cpuInfo } from './machine-info.js'

const USAGE =
  'usage: node packages/bench/dist/hedging.js [--quick] [--json <file>] [--requests <n>] [--requests-high <n>] [--seed <n>]\n  [--hedge-max <n>] [--median-ms <ms>] [--sigma <s>] [--only <rows>] [--low <load>] [--high <load>] [--correlated]'
const OPTIONS = {
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
} as const satisfies OptionSpec

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

async function main(): Promise<number> {
  checkArgs('hedging.js', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  if (values.only !== undefined && values.only !== 'low' && values.only !== 'high')
    throw new Error(`--only must be 'low' or 'high' (got ${values.only})`)
  const base = values.quick ? { ...RUN_DEFAULTS, ...QUICK } : RUN_DEFAULTS
  const settings = {
    ...base,
    requests: numberOption('requests', values.requests, base.requests),
    requestsHigh: numberOption('requests-high', values['requests-high'], base.requestsHigh),
    seed: numberOption('seed', values.seed, base.seed),
    hedgeMaxAttempts: numberOption('hedge-max', values['hedge-max'], base.hedgeMaxAttempts),
    lowLoad: numberOption('low', values.low, base.lowLoad, { isInteger: false, min: 0.01 }),
    highLoad: numberOption('high', values.high, base.highLoad, { isInteger: false, min: 0.01 }),
  }
  const dist: ServiceTime = {
    ...SERVICE_TIME_DEFAULTS,
    medianMs: numberOption('median-ms', values['median-ms'], SERVICE_TIME_DEFAULTS.medianMs, {
      isInteger: false,
      min: 0.01,
    }),
    sigma: numberOption('sigma', values.sigma, SERVICE_TIME_DEFAULTS.sigma, { isInteger: false, min: 0.01 }),
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
    cpuModel: cpuInfo().model,
    node: process.version,
    redis: server.version,
  }
  const slots = settings.processes * settings.concurrency
  console.log(
    `hedging: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, Redis ${machine.redis}; ` +
      `${settings.processes} worker processes x concurrency ${settings.concurrency}; service time ${JSON.stringify(dist)} ` +
      `(nominal mean ${nominalMeanMs(dist).toFixed(2)} ms)`,
  )
  const pool = 'hedging'
  const conn = new Redis(server.url, { maxRetriesPerRequest: 1 })
  const fleet = await startFleet(settings.processes, { redis: server.url, pool, count: 1, dist, ...settings })
  const bench: Bench = {
    url: server.url,
    pool,
    keys: poolKeys(DISPATCHER_DEFAULTS.prefix, pool),
    conn,
    fleet,
  }
  const rows: RowResult[] = []
  let calibration: Calibration | undefined
  const reruns = { left: settings.maxReruns }
  try {
    calibration = await calibrate(bench, settings.calibrationRequests, settings.calibrationInFlight)
    const capacityPerSec = (slots / calibration.meanServiceMs) * 1_000
    console.log(
      `calibration: mean service ${calibration.meanServiceMs.toFixed(2)} ms, capacity ${capacityPerSec.toFixed(0)}/s`,
    )
    const loads = [
      { name: 'low', utilisation: settings.lowLoad, requests: settings.requests },
      { name: 'high', utilisation: settings.highLoad, requests: settings.requestsHigh },
    ].filter((l) => values.only === undefined || l.name === values.only)
    for (const { utilisation, requests } of loads) {
      const ratePerSec = utilisation * capacityPerSec
      console.log(`\nload ${Math.round(utilisation * 100)}%: ${ratePerSec.toFixed(0)} requests/s`)
      rows.push(...(await runLoad(bench, { ...settings, utilisation, ratePerSec, requests, reruns })))
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
  console.log(`\n${mainTable(rows)}\n\n${detailTable(rows)}\n\n${checksTable(checks)}`)
  const run = {
    command,
    durationS: Math.round((Date.now() - startedAt) / 1_000),
    reruns: settings.maxReruns - reruns.left,
  }
  if (values.json !== undefined) {
    const out = { run, machine, settings, serviceTime: dist, calibration, rows, checks }
    writeFileSync(values.json, `${JSON.stringify(out, null, 2)}\n`)
  }
  console.log(`\n${command}: ${run.durationS} s, ${run.reruns} row(s) measured again`)
  const failed = rows.filter((r) => r.succeeded < r.requests)
  for (const r of failed)
    console.error(
      `PROBLEM: ${r.row}: ${r.requests - r.succeeded} requests failed: ${JSON.stringify(r.errors)}`,
    )
  return failed.length > 0 ? 1 : 0
}

runMain(main)
