/**
 * Suite f's BullMQ producer process: BullMQ's closest equivalent of a stream. A `Queue` adds every
 * job of a phase with `addBulk` (in chunks of `bulkChunk`), and one `QueueEvents` delivers each
 * job's `progress` events (its chunks) and its `completed` event (its end), settled by job id.
 *
 *   node dist/runners/bullmq-stream-producer.js '<json BullmqStreamProducerConfig>'
 *
 * Messages: see stream-load.ts (`warmup`, `go`, `stop`).
 */
import { Queue, QueueEvents } from 'bullmq'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
import {
  type StreamChunkData,
  type StreamClient,
  type StreamLoad,
  type StreamRequest,
  type StreamTally,
  serveStreamProducer,
} from './stream-load.js'

/** What the parent passes as the first argument (JSON). */
export interface BullmqStreamProducerConfig {
  redis: string
  queue: string
  load: StreamLoad
  /** Jobs per addBulk call. */
  bulkChunk: number
  timeoutMs: number
}

async function main(): Promise<void> {
  const config = readConfig<BullmqStreamProducerConfig>()
  const traffic = countRedisTraffic(config.redis)
  const url = new URL(config.redis)
  const connection = { host: url.hostname, port: Number(url.port) }
  const queue = new Queue<StreamRequest>(config.queue, { connection })
  const events = new QueueEvents(config.queue, { connection: { ...connection, maxRetriesPerRequest: null } })

  // The phase under way: which job id is which stream, and what to call when the last one ends.
  let phase: { tally: StreamTally; streamOf: Map<string, number>; left: number; done: () => void } | undefined
  events.on('progress', ({ jobId, data }) => {
    const n = phase?.streamOf.get(jobId)
    if (n !== undefined) phase?.tally.chunk(n, data as unknown as StreamChunkData)
  })
  events.on('completed', ({ jobId }) => {
    const p = phase
    const n = p?.streamOf.get(jobId)
    if (p === undefined || n === undefined) return
    p.streamOf.delete(jobId)
    p.tally.ended(n)
    if (--p.left === 0) p.done()
  })
  events.on('failed', ({ jobId, failedReason }) => {
    if (phase?.streamOf.has(jobId)) fail(new Error(`job ${jobId} failed: ${failedReason}`))
  })

  const client: StreamClient = {
    async openAll(first, count, chunks, tally) {
      // Job ids are known once addBulk answers; events that come before are matched by the
      // job's number, which is its id's position: BullMQ numbers the jobs of a queue 1, 2, ...
      const streamOf = new Map<string, number>()
      for (let i = 0; i < count; i++) {
        streamOf.set(String(first + i + 2), first + i)
        tally.opened(first + i)
      }
      let timer: NodeJS.Timeout | undefined
      const ended = new Promise<void>((resolve, reject) => {
        phase = { tally, streamOf, left: count, done: resolve }
        timer = setTimeout(
          () => reject(new Error(`bullmq-stream-producer: jobs not completed within ${config.timeoutMs} ms`)),
          config.timeoutMs,
        )
      })
      for (let start = 0; start < count; start += config.bulkChunk) {
        const size = Math.min(config.bulkChunk, count - start)
        const jobs = await queue.addBulk(
          Array.from({ length: size }, (_, i) => ({
            name: 'stream',
            data: { n: first + start + i, chunks },
          })),
        )
        jobs.forEach((job, i) => {
          if (streamOf.get(job.id as string) !== first + start + i)
            throw new Error(`bullmq-stream-producer: job ${job.id} is not stream ${first + start + i}`)
        })
      }
      try {
        await ended
      } finally {
        clearTimeout(timer)
        phase = undefined
      }
    },
  }
  await queue.waitUntilReady()
  await events.waitUntilReady()
  // The first add connects and numbers job 1; the warm-up must not pay for the connection.
  await queue.add('stream', { n: -1, chunks: 0 })
  emit({ type: 'ready' })

  serveStreamProducer({
    name: 'bullmq-stream-producer',
    load: config.load,
    client,
    traffic,
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await Promise.all([queue.close(), events.close()])
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
