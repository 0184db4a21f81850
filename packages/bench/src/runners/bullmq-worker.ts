/**
 * A BullMQ consumer process: one `Worker` with the given concurrency, set up as BullMQ's docs
 * recommend (a connection with `maxRetriesPerRequest: null`, finished jobs removed by the worker:
 * `removeOnComplete: { count }` and `removeOnFail: { count }`). With the `stream` work (suite f),
 * BullMQ's closest equivalent of a stream: `await job.updateProgress(chunk)` per chunk.
 *
 *   node dist/runners/bullmq-worker.js '<json BullmqWorkerConfig>'
 *
 * Same messages as hedgeyard-worker.ts; a job counts as processed at the worker's `completed`
 * event, which BullMQ emits once the job is stored as completed.
 */
import { performance } from 'node:perf_hooks'
import { type Job, Worker } from 'bullmq'
import { chunkPacer, isTimed, jobWork, monotonicUs, type StreamRequest, type WorkSpec } from './job-work.js'
import { countTraffic, emit, fail, readConfig } from './runner-io.js'
import { serveWorker, WorkerTally } from './worker-report.js'

/** What the parent passes as the first argument (JSON). */
export interface BullmqWorkerConfig {
  redis: string
  queue: string
  concurrency: number
  /** Finished jobs BullMQ keeps: 0 removes them as they finish. */
  keepCompleted: number
  keepFailed: number
  work: WorkSpec
  countCommands?: boolean
}

async function main(): Promise<void> {
  const config = readConfig<BullmqWorkerConfig>()
  const tally = new WorkerTally(countTraffic(config.countCommands === true))
  const work = jobWork(config.work, 1)
  const timed = isTimed(config.work)
  const url = new URL(config.redis)
  let failed = 0

  const pacer = chunkPacer(config.work)
  const processor = async (job: Job) => {
    if (config.work.kind === 'stream') {
      const { chunks } = job.data as StreamRequest
      const wait = pacer?.()
      for (let i = 1; i <= chunks; i++) {
        if (wait) await wait(i)
        await job.updateProgress({ i, t: monotonicUs() })
      }
      return { chunks }
    }
    const startedMs = performance.now()
    await work()
    if (!timed) return null
    const elapsed = performance.now() - startedMs
    tally.worked(worker.id, elapsed)
    return elapsed
  }
  const worker: Worker = new Worker(config.queue, processor, {
    connection: { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null },
    concurrency: config.concurrency,
    removeOnComplete: { count: config.keepCompleted },
    removeOnFail: { count: config.keepFailed },
  })
  worker.on('completed', () => tally.done(worker.id))
  worker.on('failed', () => {
    failed++
  })
  worker.on('error', (err) => process.stderr.write(`bullmq-worker: ${err.message}\n`))
  await worker.waitUntilReady()
  emit({ type: 'ready', workerIds: [worker.id] })

  serveWorker({
    name: 'bullmq-worker',
    tally,
    check() {
      if (failed > 0) throw new Error(`bullmq-worker: ${failed} job(s) failed`)
    },
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await worker.close()
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
