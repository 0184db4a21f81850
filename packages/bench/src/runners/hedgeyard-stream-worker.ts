/**
 * Suite f's Hedgeyard consumer process: `startWorkers` (the code path of `hedgeyard worker`) with
 * an async generator handler that yields `req.chunks` chunks as fast as it is let, each stamped
 * with the time of its `yield`, and returns the count. Its result TTL (which the job's output
 * stream is kept for) is short, so the suite can see Redis memory come back.
 *
 *   node dist/runners/hedgeyard-stream-worker.js '<json HedgeyardStreamWorkerConfig>'
 *
 * Same messages as hedgeyard-worker.ts; a job counts as processed when its handler returns.
 */
import { type JobContext, startWorkers } from 'hedgeyard'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
import { monotonicUs, type StreamChunkData, type StreamRequest } from './stream-load.js'
import { serveWorker, WorkerTally } from './worker-report.js'

/** What the parent passes as the first argument (JSON). */
export interface HedgeyardStreamWorkerConfig {
  redis: string
  pool: string
  idPrefix: string
  count: number
  concurrency: number
  queueCapacity: number
  resultTtlMs: number
}

async function main(): Promise<void> {
  const config = readConfig<HedgeyardStreamWorkerConfig>()
  const tally = new WorkerTally(countRedisTraffic(config.redis))
  async function* handler(req: StreamRequest, ctx: JobContext): AsyncGenerator<StreamChunkData> {
    for (let i = 1; i <= req.chunks; i++) yield { i, t: monotonicUs() }
    tally.done(ctx.workerId)
    return { chunks: req.chunks }
  }

  const group = await startWorkers({
    redis: config.redis,
    pool: config.pool,
    idPrefix: config.idPrefix,
    count: config.count,
    concurrency: config.concurrency,
    queueCapacity: config.queueCapacity,
    resultTtlMs: config.resultTtlMs,
    handler,
  })
  emit({ type: 'ready', workerIds: [...group.workerIds] })

  serveWorker({
    name: 'hedgeyard-stream-worker',
    tally,
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await group.close()
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
