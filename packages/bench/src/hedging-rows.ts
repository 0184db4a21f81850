import { setTimeout as sleep } from 'node:timers/promises'
import {
  Dispatcher,
  type DispatcherStats,
  type HedgingOptions,
  isHedgeyardError,
  type PoolKeys,
  type SubmitOptions,
} from 'hedgeyard'
import type { Redis } from 'ioredis'
import { type HealthProbe, probeHealth } from './health-probe.js'
import type { RowName, RowResult } from './hedging-report.js'
import { percentile } from './latency.js'
import { machineBusySeconds, waitForQuiet } from './machine-load.js'
import { commandStats, redisCpuSeconds } from './redis-info.js'
import { type RunnerMessage, RunnerProcess } from './runner-process.js'
import type { HedgingRequest, HedgingWorkerConfig, HedgingWorkerReport } from './runners/hedging-worker.js'
import { openLoop, poissonOffsetsMs } from './runners/workload.js'

/** The worker processes of the benchmark, each running runners/hedging-worker.js. */
export interface Fleet {
  /** The counters of every process, added up. */
  report(): Promise<HedgingWorkerReport>
  /** Drains every worker and waits for the processes to exit. */
  close(): Promise<void>
}

/** Starts `processes` worker processes and waits until all are registered. */
export async function startFleet(
  processes: number,
  config: Omit<HedgingWorkerConfig, 'idPrefix'>,
): Promise<Fleet> {
  const started = await Promise.allSettled(
    Array.from({ length: processes }, (_, p) =>
      RunnerProcess.start('hedging-worker', { ...config, idPrefix: `hedge-p${p + 1}` }),
    ),
  )
  const runners = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value.runner] : []))
  const failed = started.find((s) => s.status === 'rejected')
  if (failed) {
    await Promise.all(runners.map((r) => r.stop()))
    throw failed.reason
  }
  return {
    async report() {
      const reports = await Promise.all(
        runners.map(
          (r) => r.request({ cmd: 'report' }, 'report') as Promise<RunnerMessage & HedgingWorkerReport>,
        ),
      )
      const sum = { runs: 0, busyMs: 0, aborted: 0, abortedBusyMs: 0, cpuMs: 0 }
      for (const r of reports) for (const k of Object.keys(sum) as (keyof typeof sum)[]) sum[k] += r[k]
      return sum
    },
    close: async () => void (await Promise.all(runners.map((r) => r.stop()))),
  }
}

/** What one open-loop run measured. */
interface LoadRun {
  /** Latency of each successful request (ms), from its scheduled send time to its result. */
  latenciesMs: number[]
  /** Failed requests by error code. */
  errors: Record<string, number>
  /** Wall time from the first scheduled send to the last result (ms). */
  durationMs: number
  /** How late the sender got behind its schedule at worst (ms). */
  maxSendLagMs: number
}

/**
 * Open loop (see runners/workload.ts): request `i` is sent at its scheduled time whatever the
 * earlier ones are doing, its latency counted from that time; a failure is counted by its code.
 */
async function runOpenLoop(
  submit: (index: number) => Promise<unknown>,
  offsetsMs: number[],
): Promise<LoadRun> {
  const errors: Record<string, number> = {}
  const ok = new Array<boolean>(offsetsMs.length).fill(false)
  const t0 = performance.now()
  const run = await openLoop(offsetsMs, (i) =>
    submit(i).then(
      () => {
        ok[i] = true
      },
      (err: unknown) => {
        const code = isHedgeyardError(err) ? err.code : err instanceof Error ? err.name : 'unknown'
        errors[code] = (errors[code] ?? 0) + 1
      },
    ),
  )
  return {
    latenciesMs: run.latenciesUs.filter((_, i) => ok[i]).map((us) => us / 1_000),
    errors,
    durationMs: performance.now() - t0,
    maxSendLagMs: Math.max(0, ...run.sendLagUs) / 1_000,
  }
}

/** Closed loop: `inFlight` requests at a time until `count` have settled; returns the failures. */
async function runClosedLoop(submit: (index: number) => Promise<unknown>, count: number, inFlight: number) {
  let next = 0
  let failed = 0
  const lane = async () => {
    while (next < count) await submit(next++).catch(() => failed++)
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane))
  return failed
}

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
const xaddCalls = async (conn: Redis) => (await commandStats(conn)).xadd?.calls ?? 0

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

function dispatcher(b: Bench, hedging: HedgingOptions): Dispatcher<HedgingRequest, number> {
  return new Dispatcher<HedgingRequest, number>({ redis: b.url, pool: b.pool, hedging })
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
  const arrivals = poissonOffsetsMs(load.requests, load.ratePerSec, serviceSeed)
  const submit = (seed: number) => (i: number) => d.submit({ s: seed, i }, spec.submit)
  try {
    await waitForQuiet(load.quietLoad, load.quietWaitMs)
    // The warm-up draws other service times and arrivals; 'auto' learns its delay from it.
    const warmup = await runOpenLoop(
      submit(serviceSeed + 7_919),
      poissonOffsetsMs(load.warmupRequests, load.ratePerSec, serviceSeed + 7_919),
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
    const { row, p50Ms, p99Ms, p999Ms, hedgesSent, otherCpuLoad } = r
    console.log(`  ${JSON.stringify({ row, p50Ms, p99Ms, p999Ms, hedgesSent, otherCpuLoad })}`)
    return r
  }
  const measure = async (spec: RowSpec) => {
    let r = show(await runRow(b, spec, load))
    while (r.otherCpuLoad > load.maxOtherLoad && load.reruns.left > 0) {
      load.reruns.left--
      console.log(`  (other processes took ${r.otherCpuLoad.toFixed(2)} CPU: measuring ${spec.row} again)`)
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
