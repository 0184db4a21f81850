/**
 * One worker process of the hedging benchmark, spawned by hedging.ts with an IPC channel:
 *
 *   node dist/hedging-worker.js '<json WorkerConfig>'
 *
 * Its handler sleeps for the request's service time (hedging-service.ts) and stops at once when
 * `ctx.signal` aborts (its copy lost). It counts handler runs and busy time: the time from the
 * start of each run until it finished or was aborted. Messages: it sends `{ type: 'ready' }`
 * once its workers are registered; `{ type: 'report' }` is answered with a {@link WorkerReport};
 * `{ type: 'close' }` drains the workers and exits.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import { type JobContext, startWorkers } from 'hedgeyard'
import { type ServiceTime, serviceTimeMs } from './hedging-service.js'

/** What the parent passes as the first argument (JSON). */
export interface WorkerConfig {
  redis: string
  pool: string
  idPrefix: string
  count: number
  concurrency: number
  queueCapacity: number
  dist: ServiceTime
}

/** A request of the benchmark: the seed of its row and its index in the row. */
export interface BenchRequest {
  s: number
  i: number
}

/** Cumulative counters of one worker process since it started. */
export interface WorkerReport {
  type: 'report'
  runs: number
  busyMs: number
  /** Runs that ended because their signal aborted (a losing copy cancelled while running). */
  aborted: number
  abortedBusyMs: number
  /** CPU time of this process (user + system, ms). */
  cpuMs: number
}

export type ParentMessage = { type: 'report' } | { type: 'close' }
export type ChildMessage = { type: 'ready'; workerIds: string[] } | WorkerReport

const send = (message: ChildMessage) => process.send?.(message)

async function main(): Promise<void> {
  if (process.send === undefined) throw new Error('hedging-worker must be spawned with an IPC channel')
  const config = JSON.parse(process.argv[2] ?? '') as WorkerConfig
  const totals: WorkerReport = {
    type: 'report',
    runs: 0,
    busyMs: 0,
    aborted: 0,
    abortedBusyMs: 0,
    cpuMs: 0,
  }

  const handler = async (req: BenchRequest, ctx: JobContext): Promise<number> => {
    const ms = serviceTimeMs(config.dist, req.s, req.i, ctx.attempt)
    const startedAt = performance.now()
    let isAborted = false
    try {
      await sleep(ms, undefined, { signal: ctx.signal })
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

  const group = await startWorkers<BenchRequest, number>({
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
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'report') {
      const cpu = process.cpuUsage()
      send({ ...totals, cpuMs: (cpu.user + cpu.system) / 1_000 })
    } else if (message.type === 'close') {
      void group.close().finally(() => process.exit(0))
    }
  })
  // The parent went away without saying so: do not linger as an orphan holding the pool.
  process.on('disconnect', () => {
    void group.close().finally(() => process.exit(0))
  })
  send({ type: 'ready', workerIds: [...group.workerIds] })
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
