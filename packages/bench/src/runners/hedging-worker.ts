/**
 * One worker process of the hedging benchmark (hedging.ts):
 *
 *   node dist/runners/hedging-worker.js '<json HedgingWorkerConfig>'
 *
 * Its handler sleeps for the request's service time (hedging-service.ts) and stops at once when
 * `ctx.signal` aborts (its copy lost). It counts handler runs and busy time: the time from the
 * start of each run until it finished or was aborted. Messages: `ready` once its workers are
 * registered; `report` answers with its {@link HedgingWorkerReport} since it started; `stop`
 * drains the workers and exits.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { type JobContext, startWorkers } from 'hedgeyard'
import { type ServiceTime, serviceTimeMs } from '../hedging-service.js'
import { emit, fail, readConfig, serveCommands } from './runner-io.js'

/** What the parent passes as the first argument (JSON). */
export interface HedgingWorkerConfig {
  redis: string
  pool: string
  idPrefix: string
  count: number
  concurrency: number
  queueCapacity: number
  dist: ServiceTime
}

/** A request of the benchmark: the seed of its row and its index in the row. */
export interface HedgingRequest {
  s: number
  i: number
}

/** Counters of one worker process since it started. */
export interface HedgingWorkerReport {
  runs: number
  busyMs: number
  /** Runs that ended because their signal aborted (a losing copy cancelled while running). */
  aborted: number
  abortedBusyMs: number
  /** CPU time of this process (user + system, ms). */
  cpuMs: number
}

async function main(): Promise<void> {
  const config = readConfig<HedgingWorkerConfig>()
  const totals: HedgingWorkerReport = { runs: 0, busyMs: 0, aborted: 0, abortedBusyMs: 0, cpuMs: 0 }
  const handler = async (req: HedgingRequest, ctx: JobContext): Promise<number> => {
    const startedAt = performance.now()
    let isAborted = false
    try {
      await sleep(serviceTimeMs(config.dist, req.s, req.i, ctx.attempt), undefined, { signal: ctx.signal })
    } catch (err) {
      isAborted = true
      throw err
    } finally {
      const busyMs = performance.now() - startedAt
      totals.runs++
      totals.busyMs += busyMs
      if (isAborted) {
        totals.aborted++
        totals.abortedBusyMs += busyMs
      }
    }
    return req.i
  }
  const group = await startWorkers<HedgingRequest, number>({
    redis: config.redis,
    pool: config.pool,
    idPrefix: config.idPrefix,
    count: config.count,
    concurrency: config.concurrency,
    queueCapacity: config.queueCapacity,
    // Short reads: a closing worker does not wait out a long BLOCK.
    blockMs: 1_000,
    drainTimeoutMs: 5_000,
    handler,
  })
  emit({ type: 'ready', workerIds: [...group.workerIds] })
  serveCommands(async ({ cmd }) => {
    if (cmd === 'report') {
      const cpu = process.cpuUsage()
      emit({ type: 'report', ...totals, cpuMs: (cpu.user + cpu.system) / 1_000 })
    } else if (cmd === 'stop') {
      await group.close()
      process.exit(0)
    } else throw new Error(`hedging-worker: unknown command '${cmd}'`)
  })
}

main().catch(fail)
