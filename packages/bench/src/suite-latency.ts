/**
 * Suites b and c, latency against BullMQ, beside the plain-commands baseline (a minimal streams
 * job with no library: XADD, XREADGROUP, then PUBLISH + XACK + XDEL) and the bare round trip
 * through Redis (PUBLISH there and back).
 * - b, closed loop: 2,000 sequential submit-and-await of a no-op job: p50/p90/p99/max.
 * - c, open loop: 1,000 requests/s for 10 s, handler sleeping 5 ms, concurrency 50: the rate
 *   achieved and p50/p99 counted from each request's scheduled send time; also its floor, the
 *   same load generator and handler in one process with no Redis.
 */
import { cdfPoints, type LatencySummary, summarize } from './latency.js'
import {
  type BenchContext,
  conditionsOf,
  describeConditions,
  measureRun,
  measureSteadily,
  type RunConditions,
  type RunMeasurement,
  type SyscallsPerJob,
  type SystemName,
  syscallsPerJob,
} from './measure-run.js'
import type { Workload } from './runners/workload.js'
import { type Spread, spread } from './stats.js'
import { LATENCY_SYSTEMS, OPEN_LOOP_SYSTEMS, pairFor, SYSTEM_LABEL, systemOrder } from './systems.js'

export const CLOSED_LOOP_DEFAULTS = Object.freeze({ jobs: 2_000, warmupJobs: 200, concurrency: 50 })
export const OPEN_LOOP_DEFAULTS = Object.freeze({
  ratePerSecond: 1_000,
  durationMs: 10_000,
  warmupMs: 1_000,
  handlerMs: 5,
  concurrency: 50,
})

/** One run of a latency suite. */
export interface LatencyRun extends RunConditions {
  repetition: number
  jobs: number
  /** Jobs per second over the run (open loop: the rate achieved). */
  jobsPerSecond: number
  latency: LatencySummary
  /** Open loop: how late the load generator sent each request (its own error, included above). */
  sendLag?: LatencySummary
  /** Open loop: latency minus the handler's own time on the worker: what the system adds. */
  overhead?: LatencySummary
  /** Open loop: how long the handler's sleep really took on the worker (ms). */
  handlerMs?: { p50: number; p99: number; max: number }
  cpuUsPerJob: { redis: number; producer: number; worker: number }
  syscallsPerJob: SyscallsPerJob
}

/** Median (min-max) over the runs of one system, and the CDF of all its runs' latencies together. */
export interface LatencyRow {
  system: RunMeasurement['system']
  p50Us: Spread
  p90Us: Spread
  p99Us: Spread
  maxUs: Spread
  meanUs: Spread
  jobsPerSecond: Spread
  /** CPU per job of Redis, the producer and the worker process together (us). */
  cpuUsPerJob: Spread
  sendLagP99Us?: Spread
  /** Open loop: p99 of the handler's real sleep time (ms). */
  handlerP99Ms?: Spread
  /** Open loop: p50 and p99 of latency minus the handler's own time (us). */
  overheadP50Us?: Spread
  overheadP99Us?: Spread
  cdf: [number, number][]
  runs: LatencyRun[]
}

export interface LatencyResult {
  kind: 'closed-loop' | 'open-loop'
  settings: Record<string, number>
  rows: LatencyRow[]
}

/** One latency suite: its workload, the systems it runs and how often. */
interface LatencyPlan {
  kind: LatencyResult['kind']
  repetitions: number
  workload: Workload
  /** The worker's concurrency. */
  concurrency: number
  /** How long the handler sleeps per job (0: a no-op handler). */
  handlerMs: number
  /** The suite's settings, recorded with its results. */
  settings: Record<string, number>
  systems: readonly SystemName[]
}

async function runLatencySuite(ctx: BenchContext, plan: LatencyPlan): Promise<LatencyResult> {
  const { kind, repetitions, workload, concurrency, handlerMs, settings, systems } = plan
  const runs = new Map<string, LatencyRun[]>()
  const samples = new Map<string, number[]>()
  for (let rep = 1; rep <= repetitions; rep++) {
    for (const system of systemOrder(rep, systems)) {
      const spec = pairFor(system, ctx, {
        name: `${kind}-${rep}`,
        concurrency,
        work: handlerMs > 0 ? { kind: 'sleep', ms: handlerMs } : { kind: 'noop' },
        workload,
      })
      const m = await measureSteadily(ctx, `${kind} rep ${rep} ${SYSTEM_LABEL[system]}`, () =>
        measureRun(ctx, spec),
      )
      const latencies = m.latenciesUs ?? []
      const run: LatencyRun = {
        repetition: rep,
        jobs: m.jobs,
        jobsPerSecond: m.jobsPerSecond,
        latency: summarize(latencies),
        ...(m.sendLagUs ? { sendLag: summarize(m.sendLagUs) } : {}),
        ...(m.overheadUs ? { overhead: summarize(m.overheadUs) } : {}),
        ...(m.worker.workMs ? { handlerMs: m.worker.workMs } : {}),
        cpuUsPerJob: {
          redis: m.redisCpuUs / m.jobs,
          producer: m.producer.cpuUs / m.jobs,
          worker: m.worker.cpuUs / m.jobs,
        },
        syscallsPerJob: syscallsPerJob(m),
        ...conditionsOf(m),
      }
      runs.set(system, [...(runs.get(system) ?? []), run])
      samples.set(system, [...(samples.get(system) ?? []), ...latencies])
      const ms = (us: number) => (us / 1_000).toFixed(2)
      const lag =
        (run.sendLag ? `, send lag p99 ${ms(run.sendLag.p99Us)} ms` : '') +
        (run.handlerMs ? `, handler sleep p99 ${run.handlerMs.p99.toFixed(2)} ms` : '') +
        (run.overhead ? `, latency - handler p99 ${ms(run.overhead.p99Us)} ms` : '')
      ctx.log(
        `${kind} rep ${rep}/${repetitions} ${SYSTEM_LABEL[system]}: ${Math.round(run.jobsPerSecond)} jobs/s, ` +
          `p50 ${ms(run.latency.p50Us)} p90 ${ms(run.latency.p90Us)} p99 ${ms(run.latency.p99Us)} ` +
          `max ${ms(run.latency.maxUs)} ms${lag}; ${describeConditions(m)}`,
      )
    }
  }
  const rows = systems.map((system): LatencyRow => {
    const list = runs.get(system) ?? []
    const s = (pick: (r: LatencyRun) => number) => spread(list.map(pick))
    const hasLag = list.every((r) => r.sendLag !== undefined) && list.length > 0
    return {
      system,
      p50Us: s((r) => r.latency.p50Us),
      p90Us: s((r) => r.latency.p90Us),
      p99Us: s((r) => r.latency.p99Us),
      maxUs: s((r) => r.latency.maxUs),
      meanUs: s((r) => r.latency.meanUs),
      jobsPerSecond: s((r) => r.jobsPerSecond),
      cpuUsPerJob: s((r) => r.cpuUsPerJob.redis + r.cpuUsPerJob.producer + r.cpuUsPerJob.worker),
      ...(hasLag ? { sendLagP99Us: s((r) => r.sendLag?.p99Us ?? Number.NaN) } : {}),
      ...(list.length > 0 && list.every((r) => r.overhead)
        ? {
            overheadP50Us: s((r) => r.overhead?.p50Us ?? Number.NaN),
            overheadP99Us: s((r) => r.overhead?.p99Us ?? Number.NaN),
          }
        : {}),
      ...(list.length > 0 && list.every((r) => r.handlerMs)
        ? { handlerP99Ms: s((r) => r.handlerMs?.p99 ?? Number.NaN) }
        : {}),
      cdf: cdfPoints(samples.get(system) ?? []),
      runs: list,
    }
  })
  return { kind, settings: { ...settings, repetitions }, rows }
}

/** The row of `system`, when it ran in this suite (a row without runs has no figures). */
export function ranRow(l: LatencyResult, system: SystemName): LatencyRow | undefined {
  return l.rows.find((x) => x.system === system && x.runs.length > 0)
}

export function runClosedLoop(ctx: BenchContext, repetitions: number): Promise<LatencyResult> {
  const o = ctx.isQuick ? { ...CLOSED_LOOP_DEFAULTS, jobs: 100, warmupJobs: 20 } : CLOSED_LOOP_DEFAULTS
  const workload: Workload = { kind: 'sequential', jobs: o.jobs, warmupJobs: o.warmupJobs }
  return runLatencySuite(ctx, {
    kind: 'closed-loop',
    repetitions,
    workload,
    concurrency: o.concurrency,
    handlerMs: 0,
    settings: { ...o },
    systems: LATENCY_SYSTEMS,
  })
}

export function runOpenLoop(ctx: BenchContext, repetitions: number): Promise<LatencyResult> {
  const o = ctx.isQuick
    ? { ...OPEN_LOOP_DEFAULTS, ratePerSecond: 200, durationMs: 1_000, warmupMs: 200 }
    : OPEN_LOOP_DEFAULTS
  const workload: Workload = {
    kind: 'open',
    ratePerSecond: o.ratePerSecond,
    durationMs: o.durationMs,
    warmupMs: o.warmupMs,
  }
  return runLatencySuite(ctx, {
    kind: 'open-loop',
    repetitions,
    workload,
    concurrency: o.concurrency,
    handlerMs: o.handlerMs,
    settings: { ...o },
    systems: OPEN_LOOP_SYSTEMS,
  })
}
