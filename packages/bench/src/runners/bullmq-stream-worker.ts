/**
 * Suite f's BullMQ consumer process: one `Worker` (set up as bullmq-worker.ts is) whose processor
 * sends `req.chunks` chunks with `await job.updateProgress(chunk)`, one at a time as fast as it is
 * let, each stamped with the time it was sent, and returns the count.
 *
 *   node dist/runners/bullmq-stream-worker.js '<json BullmqStreamWorkerConfig>'
 *
 * Same messages as hedgeyard-worker.ts; a job counts as processed at the worker's `completed` event.
 */
import { type Job, Worker } from 'bullmq'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
import { monotonicUs, type StreamRequest } from './stream-load.js'
import { serveWorker, WorkerTally } from './worker-report.js'

/** What the parent passes as the first argument (JSON). */
export interface BullmqStreamWorkerConfig {
  redis: string
  queue: string
  concurrency: number
  keepCompleted: number
  keepFailed: number
}

async function main(): Promise<void> {
  const config = readConfig<BullmqStreamWorkerConfig>()
  const tally = new WorkerTally(countRedisTraffic(config.redis))
  const url = new URL(config.redis)
  let failed = 0

  const worker = new Worker<StreamRequest>(
    config.queue,
    async (job: Job<StreamRequest>) => {
      for (let i = 1; i <= job.data.chunks; i++) await job.updateProgress({ i, t: monotonicUs() })
      return { chunks: job.data.chunks }
    },
    {
      connection: { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null },
      concurrency: config.concurrency,
      removeOnComplete: { count: config.keepCompleted },
      removeOnFail: { count: config.keepFailed },
    },
  )
  worker.on('completed', () => tally.done(worker.id))
  worker.on('failed', () => {
    failed++
  })
  worker.on('error', (err) => {
    process.stderr.write(`bullmq-stream-worker: ${err.message}\n`)
  })
  await worker.waitUntilReady()
  emit({ type: 'ready', workerIds: [worker.id] })

  serveWorker({
    name: 'bullmq-stream-worker',
    tally,
    check() {
      if (failed > 0) throw new Error(`bullmq-stream-worker: ${failed} job(s) failed`)
    },
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await worker.close()
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
