/**
 * Suite a, throughput: 20,000 no-op jobs submitted in bulk, total concurrency 50 and then 1;
 * jobs/s and CPU per job (Redis from INFO cpu, Node from each process's process.cpuUsage), the
 * system calls of each process and the commands Redis ran (INFO commandstats) per job. The
 * commands each process sends are counted in one more run of each system, apart from the timed
 * ones (counting costs the processes CPU).
 */
import {
  type BenchContext,
  type CommandsPerJob,
  commandsPerJob,
  conditionsOf,
  describeConditions,
  measureRun,
  measureSteadily,
  type RunConditions,
  type RunMeasurement,
  redisCallsPerJob,
  type SyscallsPerJob,
  syscallsPerJob,
} from './measure-run.js'
import { type Spread, spread } from './stats.js'
import { type PairOptions, pairFor, SYSTEM_LABEL, systemOrder } from './systems.js'

export const THROUGHPUT_DEFAULTS = Object.freeze({ jobs: 20_000, warmupJobs: 1_000, concurrencies: [50, 1] })
const QUICK = Object.freeze({ jobs: 500, warmupJobs: 100 })

/** One run, per job. */
export interface ThroughputRun extends RunConditions {
  repetition: number
  jobs: number
  wallMs: number
  jobsPerSecond: number
  redisUsPerJob: number
  producerUsPerJob: number
  workerUsPerJob: number
  totalUsPerJob: number
  syscallsPerJob: SyscallsPerJob
  /** Commands Redis ran per job (scripts' inner commands included), and their usec per job. */
  redisCallsPerJob: Record<string, { calls: number; usec: number }>
}

/** Median (min-max) over the runs of one system at one concurrency. */
export interface ThroughputRow {
  system: RunMeasurement['system']
  concurrency: number
  jobsPerSecond: Spread
  redisUsPerJob: Spread
  producerUsPerJob: Spread
  workerUsPerJob: Spread
  totalUsPerJob: Spread
  /** Commands each process sent per job, in the counted run. */
  commandsPerJob: CommandsPerJob
  runs: ThroughputRun[]
}

export interface ThroughputResult {
  settings: { jobs: number; warmupJobs: number; concurrencies: readonly number[]; repetitions: number }
  rows: ThroughputRow[]
}

function perJob(m: RunMeasurement, repetition: number): ThroughputRun {
  const redisUsPerJob = m.redisCpuUs / m.jobs
  const producerUsPerJob = m.producer.cpuUs / m.jobs
  const workerUsPerJob = m.worker.cpuUs / m.jobs
  return {
    repetition,
    jobs: m.jobs,
    wallMs: m.wallMs,
    jobsPerSecond: m.jobsPerSecond,
    redisUsPerJob,
    producerUsPerJob,
    workerUsPerJob,
    totalUsPerJob: redisUsPerJob + producerUsPerJob + workerUsPerJob,
    syscallsPerJob: syscallsPerJob(m),
    redisCallsPerJob: redisCallsPerJob(m),
    ...conditionsOf(m),
  }
}

export async function runThroughput(ctx: BenchContext, repetitions: number): Promise<ThroughputResult> {
  const size = ctx.isQuick ? QUICK : THROUGHPUT_DEFAULTS
  const options = (concurrency: number, name: string): PairOptions => ({
    name,
    concurrency,
    work: { kind: 'noop' },
    workload: { kind: 'bulk', jobs: size.jobs, warmupJobs: size.warmupJobs },
  })
  const runs = new Map<string, ThroughputRun[]>()
  for (let rep = 1; rep <= repetitions; rep++) {
    for (const concurrency of THROUGHPUT_DEFAULTS.concurrencies) {
      for (const system of systemOrder(rep)) {
        const label = `throughput rep ${rep}/${repetitions} ${SYSTEM_LABEL[system]} c=${concurrency}`
        const spec = pairFor(system, ctx, options(concurrency, `tp-${concurrency}-${rep}`))
        const m = await measureSteadily(ctx, label, () => measureRun(ctx, spec))
        const run = perJob(m, rep)
        runs.set(`${system}/${concurrency}`, [...(runs.get(`${system}/${concurrency}`) ?? []), run])
        ctx.log(
          `${label}: ${Math.round(run.jobsPerSecond)} jobs/s, CPU/job ${run.totalUsPerJob.toFixed(1)} us ` +
            `(Redis ${run.redisUsPerJob.toFixed(1)}, producer ${run.producerUsPerJob.toFixed(1)}, ` +
            `worker ${run.workerUsPerJob.toFixed(1)}); ${describeConditions(m)}`,
        )
      }
    }
  }
  const rows: ThroughputRow[] = []
  for (const concurrency of THROUGHPUT_DEFAULTS.concurrencies) {
    for (const system of ['hedgeyard', 'bullmq'] as const) {
      const counted = pairFor(system, ctx, {
        ...options(concurrency, `tp-${concurrency}-count`),
        countCommands: true,
      })
      const commands = commandsPerJob(await measureRun(ctx, counted))
      const list = runs.get(`${system}/${concurrency}`) ?? []
      const s = (pick: (r: ThroughputRun) => number) => spread(list.map(pick))
      rows.push({
        system,
        concurrency,
        jobsPerSecond: s((r) => r.jobsPerSecond),
        redisUsPerJob: s((r) => r.redisUsPerJob),
        producerUsPerJob: s((r) => r.producerUsPerJob),
        workerUsPerJob: s((r) => r.workerUsPerJob),
        totalUsPerJob: s((r) => r.totalUsPerJob),
        commandsPerJob: commands,
        runs: list,
      })
    }
  }
  return { settings: { ...size, concurrencies: THROUGHPUT_DEFAULTS.concurrencies, repetitions }, rows }
}
