/**
 * Suite a, throughput: 20,000 no-op jobs submitted in bulk, total concurrency 50 and then 1;
 * jobs/s and CPU per job (Redis from INFO cpu, Node from each process's process.cpuUsage), with
 * the commands each process sent and the commands Redis ran (INFO commandstats) per job.
 */
import {
  type BenchContext,
  describeConditions,
  measureRun,
  measureSteadily,
  type RunMeasurement,
} from './measure-run.js'
import { type Spread, spread } from './stats.js'
import { pairFor, SYSTEM_LABEL, systemOrder } from './systems.js'

export const THROUGHPUT_DEFAULTS = Object.freeze({ jobs: 20_000, warmupJobs: 1_000, concurrencies: [50, 1] })
const QUICK = Object.freeze({ jobs: 500, warmupJobs: 100 })

/** One run, per job. */
export interface ThroughputRun {
  repetition: number
  jobs: number
  wallMs: number
  jobsPerSecond: number
  redisUsPerJob: number
  producerUsPerJob: number
  workerUsPerJob: number
  totalUsPerJob: number
  /** Commands sent per job, by process and command name. */
  clientCommandsPerJob: { producer: Record<string, number>; worker: Record<string, number> }
  /** Writes to and reads from the sockets to Redis per job, by process. */
  socketIoPerJob: { producer: { writes: number; reads: number }; worker: { writes: number; reads: number } }
  /** Commands Redis ran per job (scripts' inner commands included), and their usec per job. */
  redisCallsPerJob: Record<string, { calls: number; usec: number }>
  probe: RunMeasurement['probe']
  loadBefore: number
  otherCpuLoad: number
  /** CPUs the hypervisor took from this VM during the run (NaN when unknown). */
  stolenCpus: number
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
  runs: ThroughputRun[]
}

export interface ThroughputResult {
  settings: { jobs: number; warmupJobs: number; concurrencies: readonly number[]; repetitions: number }
  rows: ThroughputRow[]
}

function perJob(m: RunMeasurement, repetition: number): ThroughputRun {
  const per = (counts: Record<string, number>) =>
    Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v / m.jobs]))
  const redisCallsPerJob: ThroughputRun['redisCallsPerJob'] = {}
  for (const [name, { calls, usec }] of Object.entries(m.redisCommands)) {
    if (['info', 'config|resetstat', 'ping'].includes(name)) continue
    redisCallsPerJob[name] = { calls: calls / m.jobs, usec: usec / m.jobs }
  }
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
    clientCommandsPerJob: { producer: per(m.producer.commands), worker: per(m.worker.commands) },
    socketIoPerJob: {
      producer: { writes: m.producer.socketWrites / m.jobs, reads: m.producer.socketReads / m.jobs },
      worker: { writes: m.worker.socketWrites / m.jobs, reads: m.worker.socketReads / m.jobs },
    },
    redisCallsPerJob,
    probe: m.probe,
    loadBefore: m.loadBefore,
    otherCpuLoad: m.otherCpuLoad,
    stolenCpus: m.stolenCpus,
  }
}

export async function runThroughput(ctx: BenchContext, repetitions: number): Promise<ThroughputResult> {
  const size = ctx.isQuick ? QUICK : THROUGHPUT_DEFAULTS
  const runs = new Map<string, ThroughputRun[]>()
  for (let rep = 1; rep <= repetitions; rep++) {
    for (const concurrency of THROUGHPUT_DEFAULTS.concurrencies) {
      for (const system of systemOrder(rep)) {
        const spec = pairFor(system, ctx, {
          name: `tp-${concurrency}-${rep}`,
          concurrency,
          work: { kind: 'noop' },
          workload: { kind: 'bulk', jobs: size.jobs, warmupJobs: size.warmupJobs },
        })
        const m = await measureSteadily(
          ctx,
          `throughput rep ${rep} ${SYSTEM_LABEL[system]} c=${concurrency}`,
          () => measureRun(ctx, spec),
        )
        const run = perJob(m, rep)
        const key = `${system}/${concurrency}`
        runs.set(key, [...(runs.get(key) ?? []), run])
        ctx.log(
          `throughput rep ${rep}/${repetitions} ${SYSTEM_LABEL[system]} c=${concurrency}: ` +
            `${Math.round(run.jobsPerSecond)} jobs/s, CPU/job ${run.totalUsPerJob.toFixed(1)} us ` +
            `(Redis ${run.redisUsPerJob.toFixed(1)}, producer ${run.producerUsPerJob.toFixed(1)}, ` +
            `worker ${run.workerUsPerJob.toFixed(1)}); ${describeConditions(m)}`,
        )
      }
    }
  }
  const rows: ThroughputRow[] = []
  for (const concurrency of THROUGHPUT_DEFAULTS.concurrencies) {
    for (const system of ['hedgeyard', 'bullmq'] as const) {
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
        runs: list,
      })
    }
  }
  return {
    settings: { ...size, concurrencies: THROUGHPUT_DEFAULTS.concurrencies, repetitions },
    rows,
  }
}
