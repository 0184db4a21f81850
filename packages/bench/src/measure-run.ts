/**
 * One measured run of a producer process against a worker process (or, for the open loop's
 * floor, a producer that runs the jobs itself), the same for every system: fresh Redis data, the
 * processes spawned, a warm-up, then the health probe and the baselines (Redis CPU,
 * commandstats, machine load, each process's CPU), the measured phase, and the same figures after it.
 */
import type { Redis } from 'ioredis'
import { type HealthProbe, probeHealth } from './health-probe.js'
import { machineBusySeconds, machineStolenSeconds, waitForQuiet } from './machine-load.js'
import { commandStats, redisCpuSeconds } from './redis-info.js'
import { type RunnerMessage, type RunnerName, RunnerProcess } from './runner-process.js'
import type { RedisTraffic } from './runners/runner-io.js'
import type { WorkerReport } from './runners/worker-report.js'
import type { PhaseResult } from './runners/workload.js'

/** Shared by every suite of one benchmark run. */
export interface BenchContext {
  redisUrl: string
  /** The benchmark's own connection: probes, INFO, FLUSHALL. */
  conn: Redis
  isQuick: boolean
  /** Before each measurement, wait up to this long for the rest of the machine to be quiet. */
  quietWaitMs: number
  /** Measurements per run at most: a disturbed one (see {@link measureSteadily}) is taken again. */
  attempts: number
  /** Measurements taken again so far, and the most the whole benchmark may take again (its time is bounded). */
  retries: { used: number; max: number }
  log(line: string): void
}

/**
 * The systems compared. The latency suites add baselines: 'plain', a minimal streams job with no
 * library, and 'pubsub', a bare round trip through Redis (the job published to the worker, the
 * result published back, nothing stored: runners/plain-worker.ts for both); and the open loop its
 * floor, 'local': the load generator and the job body in one process, no Redis and no dispatch
 * (runners/local-producer.ts).
 */
export type SystemName = 'hedgeyard' | 'bullmq' | 'plain' | 'pubsub' | 'local'

/**
 * The two processes of a run. Without a worker the producer runs the jobs itself (the 'local'
 * floor) and reports the worker's figures in its `done` message.
 */
export interface PairSpec {
  system: SystemName
  worker?: { runner: RunnerName; config: object }
  producer: { runner: RunnerName; config: object }
}

/**
 * What a suite adds to the steps of a run (suite f: Redis memory). Each step runs with the
 * processes up; what it observes stays with the suite.
 */
export interface RunHooks {
  /** After the warm-up is processed, before the quiet wait, the probe and the baselines. */
  afterWarmup?(): Promise<void>
  /** When the measured phase starts; the function it returns is awaited once the worker has reported. */
  whileMeasuring?(): () => Promise<void>
  /** After the run's figures are taken, before the producer is stopped. */
  afterRun?(): Promise<void>
}

/** CPU time, commands and system calls of one process over the measured phase. */
export interface ProcessFigures extends RedisTraffic {
  cpuUs: number
}

/** The state of the machine around a run, kept with each run's figures. */
export interface RunConditions {
  probe: HealthProbe
  /** CPUs busy on the machine just before the run (NaN when not sampled). */
  loadBefore: number
  /** CPUs other processes kept busy during the run: machine busy time minus ours and Redis's. */
  otherCpuLoad: number
  /** CPUs the hypervisor took from this VM during the run (/proc/stat `steal`; NaN when unknown). */
  stolenCpus: number
}

export function conditionsOf(m: RunConditions): RunConditions {
  return { probe: m.probe, loadBefore: m.loadBefore, otherCpuLoad: m.otherCpuLoad, stolenCpus: m.stolenCpus }
}

/** What one run measured. */
export interface RunMeasurement extends RunConditions {
  system: SystemName
  jobs: number
  /** From the first send to the last job done (at the producer, or at the worker if later). */
  wallMs: number
  jobsPerSecond: number
  redisCpuUs: number
  producer: ProcessFigures
  worker: ProcessFigures & {
    perWorker: Record<string, number>
    busyMsPerWorker: Record<string, number>
    workMs: WorkerReport['workMs']
  }
  /** INFO commandstats over the run: calls include the commands scripts run. */
  redisCommands: Record<string, { calls: number; usec: number }>
  latenciesUs?: number[]
  sendLagUs?: number[]
  /** Open loop: latency minus the handler's own time, per request. */
  overheadUs?: number[]
  /** Whatever else the producer reported (routing: jobs per worker, affinity counters). */
  extra: Record<string, unknown>
}

type Report = RunnerMessage & WorkerReport
type Done = RunnerMessage & PhaseResult & RedisTraffic & { cpuUs: number; worker?: Report }

/** The worker's report a producer that ran its jobs itself sent along with `done`. */
function workerReportOf(done: Done): Report {
  if (!done.worker) throw new Error(`a run without a worker process needs the producer's report of its jobs`)
  return done.worker
}

/** Runs one measurement of `spec` on fresh Redis data; the processes are stopped whatever happens. */
export async function measureRun(
  ctx: BenchContext,
  spec: PairSpec,
  hooks: RunHooks = {},
): Promise<RunMeasurement> {
  await ctx.conn.call('FLUSHALL', 'SYNC')
  if (!spec.worker) return measureWith(ctx, spec.system, undefined, spec.producer, hooks)
  const { runner: worker } = await RunnerProcess.start(spec.worker.runner, spec.worker.config)
  try {
    return await measureWith(ctx, spec.system, worker, spec.producer, hooks)
  } finally {
    await worker.stop()
  }
}

/**
 * Measures one producer process (spawned here, stopped at the end) against a worker process
 * that is already running (or none: the producer runs the jobs itself and reports for the
 * worker): warm-up, probe, baselines, the measured phase, figures.
 */
export async function measureWith(
  ctx: BenchContext,
  system: SystemName,
  worker: RunnerProcess | undefined,
  producerSpec: PairSpec['producer'],
  hooks: RunHooks = {},
): Promise<RunMeasurement> {
  const { runner: producer } = await RunnerProcess.start(producerSpec.runner, producerSpec.config)
  try {
    const warm = await producer.request<RunnerMessage & { jobs: number }>({ cmd: 'warmup' }, 'warmed')
    await worker?.request({ cmd: 'report', atLeast: warm.jobs }, 'report')
    await hooks.afterWarmup?.()
    const loadBefore = await waitForQuiet(0.3, ctx.quietWaitMs)
    const probe = await probeHealth(ctx.conn)
    await worker?.request({ cmd: 'mark' }, 'marked')
    await ctx.conn.config('RESETSTAT')
    const redisBefore = await redisCpuSeconds(ctx.conn)
    const busyBefore = machineBusySeconds()
    const stolenBefore = machineStolenSeconds()
    const ownBefore = process.cpuUsage()
    const wallBefore = process.hrtime.bigint()

    const endWatch = hooks.whileMeasuring?.()
    const done = await producer.request<Done>({ cmd: 'go' }, 'done', 600_000)
    const report = worker
      ? await worker.request<Report>({ cmd: 'report', atLeast: done.jobs }, 'report', 600_000)
      : workerReportOf(done)
    await endWatch?.()

    const redisAfter = await redisCpuSeconds(ctx.conn)
    const redisCommands = await commandStats(ctx.conn)
    const windowSeconds = Number(process.hrtime.bigint() - wallBefore) / 1e9
    const own = process.cpuUsage(ownBefore)
    const redisCpuUs = (redisAfter.total - redisBefore.total) * 1e6
    const oursSeconds = (own.user + own.system + done.cpuUs + report.cpuUs + redisCpuUs) / 1e6
    const otherCpuLoad = Math.max(0, (machineBusySeconds() - busyBefore - oursSeconds) / windowSeconds)
    const stolenCpus = (machineStolenSeconds() - stolenBefore) / windowSeconds
    await hooks.afterRun?.()

    const endNs =
      BigInt(done.endNs) > BigInt(report.lastDoneNs) ? BigInt(done.endNs) : BigInt(report.lastDoneNs)
    const wallMs = Number(endNs - BigInt(done.startNs)) / 1e6
    const {
      type: _t,
      jobs,
      startNs: _s,
      endNs: _e,
      cpuUs,
      commands,
      writes,
      reads,
      latenciesUs,
      sendLagUs,
      overheadUs,
      worker: _w,
      ...extra
    } = done
    return {
      system,
      jobs,
      wallMs,
      jobsPerSecond: jobs / (wallMs / 1_000),
      probe,
      loadBefore,
      otherCpuLoad,
      stolenCpus,
      redisCpuUs,
      producer: { cpuUs, commands, writes, reads },
      worker: {
        cpuUs: report.cpuUs,
        commands: report.commands,
        writes: report.writes,
        reads: report.reads,
        perWorker: report.perWorker,
        busyMsPerWorker: report.busyMsPerWorker,
        workMs: report.workMs,
      },
      redisCommands,
      ...(latenciesUs ? { latenciesUs } : {}),
      ...(sendLagUs ? { sendLagUs } : {}),
      ...(overheadUs ? { overheadUs } : {}),
      extra,
    }
  } finally {
    await producer.stop()
  }
}

/** Write and read system calls per job of each process (mostly on its sockets to Redis). */
export interface SyscallsPerJob {
  producer: { writes: number; reads: number }
  worker: { writes: number; reads: number }
}

export function syscallsPerJob(m: RunMeasurement, jobs = m.jobs): SyscallsPerJob {
  const per = (p: ProcessFigures) => ({ writes: p.writes / jobs, reads: p.reads / jobs })
  return { producer: per(m.producer), worker: per(m.worker) }
}

/** Commands sent per job by each process (a counted run), and those Redis ran (INFO commandstats). */
export interface CommandsPerJob {
  producer: Record<string, number>
  worker: Record<string, number>
}

export function commandsPerJob(m: RunMeasurement, jobs = m.jobs): CommandsPerJob {
  const per = (counts: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / jobs]))
  return { producer: per(m.producer.commands), worker: per(m.worker.commands) }
}

/** Calls and usec per job of each command Redis ran over the run (INFO commandstats), probes left out. */
export function redisCallsPerJob(
  m: RunMeasurement,
  jobs = m.jobs,
): Record<string, { calls: number; usec: number }> {
  const out: Record<string, { calls: number; usec: number }> = {}
  for (const [name, { calls, usec }] of Object.entries(m.redisCommands)) {
    if (!['info', 'config|resetstat', 'ping'].includes(name))
      out[name] = { calls: calls / jobs, usec: usec / jobs }
  }
  return out
}

/** Other processes keeping more CPUs busy than this during a run disturb it. */
export const DISTURBED_LOAD = 0.5

/**
 * Takes a measurement again (up to `ctx.attempts` in all, while the benchmark's retry budget
 * lasts) while other processes kept more than {@link DISTURBED_LOAD} CPUs busy during it; the last
 * one is kept, and shows its load.
 */
export async function measureSteadily<T extends { otherCpuLoad: number }>(
  ctx: BenchContext,
  label: string,
  measure: () => Promise<T>,
): Promise<T> {
  let m = await measure()
  for (let attempt = 2; attempt <= ctx.attempts && m.otherCpuLoad > DISTURBED_LOAD; attempt++) {
    if (ctx.retries.used >= ctx.retries.max) {
      ctx.log(
        `${label}: other processes took ${m.otherCpuLoad.toFixed(2)} CPU during the run; no retries left`,
      )
      break
    }
    ctx.retries.used++
    ctx.log(`${label}: other processes took ${m.otherCpuLoad.toFixed(2)} CPU during the run; measuring again`)
    m = await measure()
  }
  return m
}

/** One line about a run's conditions, printed before its figures. */
export function describeConditions(m: RunConditions): string {
  const before = Number.isNaN(m.loadBefore) ? '' : `, load before ${m.loadBefore.toFixed(2)} CPU`
  return (
    `probe: cpu loop ${m.probe.cpuLoopMs.toFixed(1)} ms, ping ${m.probe.pingUs.toFixed(0)} us${before}, ` +
    `other processes during ${m.otherCpuLoad.toFixed(2)} CPU`
  )
}
