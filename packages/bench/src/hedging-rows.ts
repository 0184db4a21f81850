import { setTimeout as sleep } from 'node:timers/promises'
import {
  Dispatcher,
  type DispatcherStats,
  type HedgingOptions,
  type PoolKeys,
  type SubmitOptions,
} from 'hedgeyard'
import type { Redis } from 'ioredis'
import { type HealthProbe, probeHealth } from './health-probe.js'
import type { Fleet } from './hedging-fleet.js'
import { percentile, poissonOffsets, runClosedLoop, runOpenLoop } from './hedging-load.js'
import type { RowName, RowResult } from './hedging-report.js'
import type { BenchRequest } from './hedging-worker.js'
import { machineBusySeconds, waitForQuiet } from './machine-load.js'
import { redisCpuSeconds } from './redis-info.js'

/** What every row shares: the private Redis, the pool and its worker processes. */
export interface Bench {
  url: string
  pool: string
  keys: PoolKeys
  /** A connection of the benchmark's own, for INFO and the idle checks. */
  conn: Redis
  fleet: Fleet
}

/** The measured service time the arrival rates are computed from. */
export interface Calibration {
  runs: number
  meanServiceMs: number
}

/** One load level: its rate and sizes. */
export interface LoadSettings {
  utilisation: number
  ratePerSec: number
  requests: number
  warmupRequests: number
  seed: number
  hedgeMaxAttempts: number
  quietLoad: number
  quietWaitMs: number
  /** A row during which other processes kept more CPUs busy than this is measured again... */
  maxOtherLoad: number
  /** ...while reruns are left (shared by every row of the run); the less disturbed measurement is kept. */
  reruns: { left: number }
}

interface RowSpec {
  row: RowName
  delay: string
  hedging: HedgingOptions
  submit: SubmitOptions
}

/** Counters read at both ends of a measured run. */
interface Snapshot {
  stats: DispatcherStats
  runs: number
  busyMs: number
  abortedRuns: number
  abortedBusyMs: number
  xadds: number
  /** CPU seconds of the machine, and of this benchmark's own processes (producer, workers, Redis). */
  machineCpuS: number
  ownCpuS: number
  /** The same, per part: producer (this process), worker processes, Redis. */
  cpuS: { producer: number; workers: number; redis: number }
}

/** Calls of XADD since Redis started (`INFO commandstats` counts the calls scripts make too). */
async function xaddCalls(conn: Redis): Promise<number> {
  const info = await conn.info('commandstats')
  return Number(/cmdstat_xadd:calls=(\d+)/.exec(info)?.[1] ?? 0)
}

/** Waits until no worker holds a job (queued or running): every copy has finished or been removed. */
async function waitIdle(b: Bench, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const loads = await b.conn.zrange(b.keys.load, '0', '-1', 'WITHSCORES')
    if (loads.every((v, i) => i % 2 === 0 || Number(v) === 0)) return
    if (Date.now() > deadline)
      throw new Error(`the pool still holds jobs after ${timeoutMs} ms: ${loads.join(' ')}`)
    await sleep(20)
  }
}

async function snapshot(b: Bench, d: Dispatcher): Promise<Snapshot> {
  const workers = await b.fleet.report()
  const redisCpu = await redisCpuSeconds(b.conn)
  const own = process.cpuUsage()
  return {
    stats: d.stats(),
    runs: workers.runs,
    busyMs: workers.busyMs,
    abortedRuns: workers.aborted,
    abortedBusyMs: workers.abortedBusyMs,
    xadds: await xaddCalls(b.conn),
    machineCpuS: machineBusySeconds(),
    ownCpuS: (own.user + own.system) / 1e6 + workers.cpuMs / 1e3 + redisCpu.total,
    cpuS: { producer: (own.user + own.system) / 1e6, workers: workers.cpuMs / 1e3, redis: redisCpu.total },
  }
}

function dispatcher(b: Bench, hedging: HedgingOptions): Dispatcher<BenchRequest, number> {
  return new Dispatcher<BenchRequest, number>({ redis: b.url, pool: b.pool, hedging })
}

/** Mean handler time over a closed loop of plain submits: what capacity is computed from. */
export async function calibrate(b: Bench, requests: number, inFlight: number): Promise<Calibration> {
  const d = dispatcher(b, {})
  try {
    const before = await b.fleet.report()
    const failed = await runClosedLoop((i) => d.submit({ s: 0x5eed, i }), requests, inFlight)
    if (failed > 0) throw new Error(`calibration: ${failed} of ${requests} requests failed`)
    await waitIdle(b)
    const after = await b.fleet.report()
    const runs = after.runs - before.runs
    return { runs, meanServiceMs: (after.busyMs - before.busyMs) / runs }
  } finally {
    await d.close()
  }
}

async function runRow(b: Bench, spec: RowSpec, load: LoadSettings): Promise<RowResult> {
  const d = dispatcher(b, spec.hedging)
  // Every row of one load gets the same arrivals and the same service times per request index.
  const loadKey = Math.round(load.utilisation * 1_000)
  const serviceSeed = load.seed * 1_000_003 + loadKey
  const arrivals = poissonOffsets(load.requests, load.ratePerSec, serviceSeed)
  const submit = (seed: number) => (i: number) => d.submit({ s: seed, i }, spec.submit)
  try {
    await waitForQuiet(load.quietLoad, load.quietWaitMs)
    // The warm-up draws other service times and arrivals; 'auto' learns its delay from it.
    const warmup = await runOpenLoop(
      submit(serviceSeed + 7_919),
      poissonOffsets(load.warmupRequests, load.ratePerSec, serviceSeed + 7_919),
    )
    await waitIdle(b)
    const probe: HealthProbe = await probeHealth(b.conn)
    const before = await snapshot(b, d)
    const run = await runOpenLoop(submit(serviceSeed), arrivals)
    await waitIdle(b)
    const after = await snapshot(b, d)
    const sorted = run.latenciesMs.sort((x, y) => x - y)
    const s = (k: keyof DispatcherStats) => after.stats[k] - before.stats[k]
    const errors = { ...run.errors }
    for (const [code, n] of Object.entries(warmup.errors)) errors[`warm-up ${code}`] = n
    const copiesQueued = after.xadds - before.xadds
    const durationS = run.durationMs / 1_000
    return {
      utilisation: load.utilisation,
      row: spec.row,
      delay: spec.submit.hedge?.delayMs === 'auto' ? `auto (${after.stats.autoDelayMs} ms)` : spec.delay,
      ratePerSec: load.ratePerSec,
      requests: load.requests,
      succeeded: sorted.length,
      errors,
      p50Ms: percentile(sorted, 0.5),
      p95Ms: percentile(sorted, 0.95),
      p99Ms: percentile(sorted, 0.99),
      p999Ms: percentile(sorted, 0.999),
      maxMs: sorted[sorted.length - 1] ?? Number.NaN,
      copiesQueued,
      extraRequests: (copiesQueued - load.requests) / load.requests,
      runs: after.runs - before.runs,
      busyMs: after.busyMs - before.busyMs,
      extraWork: Number.NaN,
      abortedWork: Number.NaN,
      abortedRuns: after.abortedRuns - before.abortedRuns,
      abortedBusyMs: after.abortedBusyMs - before.abortedBusyMs,
      hedgesSent: s('hedgesSent'),
      hedgesWon: s('hedgesWon'),
      hedgesCancelled: s('hedgesCancelled'),
      hedgesDenied: s('hedgesDenied'),
      retriesSent: s('retriesSent'),
      autoDelayMs: after.stats.autoDelayMs,
      durationMs: run.durationMs,
      maxSendLagMs: run.maxSendLagMs,
      probe,
      ownCpuLoad: (after.ownCpuS - before.ownCpuS) / durationS,
      cpuUsPerRequest: {
        producer: ((after.cpuS.producer - before.cpuS.producer) / load.requests) * 1e6,
        workers: ((after.cpuS.workers - before.cpuS.workers) / load.requests) * 1e6,
        redis: ((after.cpuS.redis - before.cpuS.redis) / load.requests) * 1e6,
      },
      otherCpuLoad:
        Math.max(0, after.machineCpuS - before.machineCpuS - (after.ownCpuS - before.ownCpuS)) / durationS,
    }
  } finally {
    await d.close()
  }
}

/** The four rows at one load; the fixed delay is the p95 the no-hedge row just measured. */
export async function runLoad(b: Bench, load: LoadSettings): Promise<RowResult[]> {
  const maxAttempts = load.hedgeMaxAttempts
  const show = (r: RowResult) => {
    console.log(
      `  ${r.row.padEnd(13)} p50 ${r.p50Ms.toFixed(1)} p95 ${r.p95Ms.toFixed(1)} p99 ${r.p99Ms.toFixed(1)} ` +
        `p99.9 ${r.p999Ms.toFixed(1)} ms; ${r.copiesQueued - r.requests} extra copies, ${r.runs} runs ` +
        `(${r.abortedRuns} aborted), hedges sent ${r.hedgesSent} won ${r.hedgesWon} cancelled ` +
        `${r.hedgesCancelled} denied ${r.hedgesDenied}; send lag <= ${r.maxSendLagMs.toFixed(1)} ms; ` +
        `probe ${r.probe.cpuLoopMs} ms; CPU: bench ${r.ownCpuLoad.toFixed(2)}, other ${r.otherCpuLoad.toFixed(2)}; ` +
        `CPU us/request: producer ${r.cpuUsPerRequest.producer.toFixed(0)}, workers ` +
        `${r.cpuUsPerRequest.workers.toFixed(0)}, Redis ${r.cpuUsPerRequest.redis.toFixed(0)}`,
    )
    return r
  }
  const measure = async (spec: RowSpec) => {
    let r = show(await runRow(b, spec, load))
    while (r.otherCpuLoad > load.maxOtherLoad && load.reruns.left > 0) {
      load.reruns.left--
      console.log(
        `  (other processes kept ${r.otherCpuLoad.toFixed(2)} CPU busy during ${spec.row}: measuring it again)`,
      )
      const again = show(await runRow(b, spec, load))
      // Chosen by how disturbed the machine was, never by the latencies.
      if (again.otherCpuLoad <= r.otherCpuLoad) r = again
    }
    return r
  }
  const none = await measure({ row: 'no hedge', delay: '-', hedging: {}, submit: {} })
  const p95 = Math.max(1, Math.round(none.p95Ms))
  const rows = [none]
  const specs: RowSpec[] = [
    {
      row: 'hedge at p95',
      delay: `${p95} ms`,
      // No budget effect: one token per submit and a bucket no run can empty.
      hedging: { budgetRatio: 1, budgetBurst: 1_000_000 },
      submit: { hedge: { delayMs: p95, maxAttempts } },
    },
    { row: 'auto + budget', delay: 'auto', hedging: {}, submit: { hedge: { delayMs: 'auto', maxAttempts } } },
    { row: 'tied', delay: '-', hedging: {}, submit: { hedge: { mode: 'tied' } } },
  ]
  for (const spec of specs) rows.push(await measure(spec))
  for (const r of rows) {
    r.extraWork = r.busyMs / none.busyMs - 1
    r.abortedWork = r.abortedBusyMs / none.busyMs
  }
  return rows
}
