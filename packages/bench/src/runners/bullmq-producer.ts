/**
 * A BullMQ producer process: a `Queue`, plus a `QueueEvents` when it waits for results. It uses
 * BullMQ's own ways for each case: `addBulk` in chunks of 1,000 for a bulk, and `queue.add` then
 * either one listener of the QueueEvents `completed` and `failed` events (see systems.ts) or
 * `job.waitUntilFinished(queueEvents)` (which needs the worker to keep completed jobs) to wait
 * for a result.
 *
 *   node dist/runners/bullmq-producer.js '<json BullmqProducerConfig>'
 *
 * Same messages as hedgeyard-producer.ts.
 */
import { Queue, QueueEvents } from 'bullmq'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
import { type ProducerClient, serveProducer, type Workload } from './workload.js'

/** What the parent passes as the first argument (JSON). */
export interface BullmqProducerConfig {
  redis: string
  queue: string
  workload: Workload
  /** Jobs per addBulk call. */
  bulkChunk: number
  timeoutMs: number
  /**
   * How to wait for a result: `job.waitUntilFinished(queueEvents)` per job, or one listener of the
   * QueueEvents `completed` and `failed` events that settles the waiting jobs by id.
   */
  waitMode: 'waitUntilFinished' | 'events'
}

/** Waits for results through one listener of a QueueEvents' `completed` and `failed` events. */
function eventWaiter(events: QueueEvents) {
  const waiting = new Map<string, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  const early = new Map<string, { value?: unknown; error?: Error }>()
  const settle = (jobId: string, outcome: { value?: unknown; error?: Error }) => {
    const w = waiting.get(jobId)
    if (w === undefined) {
      early.set(jobId, outcome)
      return
    }
    waiting.delete(jobId)
    if (outcome.error) w.reject(outcome.error)
    else w.resolve(outcome.value)
  }
  events.on('completed', ({ jobId, returnvalue }) => {
    const value = typeof returnvalue === 'string' ? (JSON.parse(returnvalue) as unknown) : returnvalue
    settle(jobId, { value })
  })
  events.on('failed', ({ jobId, failedReason }) => settle(jobId, { error: new Error(failedReason) }))
  return (jobId: string): Promise<unknown> => {
    const done = early.get(jobId)
    if (done) {
      early.delete(jobId)
      return done.error ? Promise.reject(done.error) : Promise.resolve(done.value)
    }
    return new Promise((resolve, reject) => waiting.set(jobId, { resolve, reject }))
  }
}

async function main(): Promise<void> {
  const config = readConfig<BullmqProducerConfig>()
  const traffic = countRedisTraffic(config.redis)
  const url = new URL(config.redis)
  const connection = { host: url.hostname, port: Number(url.port) }
  const queue = new Queue(config.queue, { connection })
  const events =
    config.workload.kind === 'bulk'
      ? undefined
      : new QueueEvents(config.queue, { connection: { ...connection, maxRetriesPerRequest: null } })
  const waitFor = events && config.waitMode === 'events' ? eventWaiter(events) : undefined
  const client: ProducerClient = {
    async submitAndWait(n) {
      const job = await queue.add('job', { n })
      if (waitFor) return waitFor(job.id as string)
      return job.waitUntilFinished(events as QueueEvents, config.timeoutMs)
    },
    async submitBulk(first, count) {
      for (let start = 0; start < count; start += config.bulkChunk) {
        const size = Math.min(config.bulkChunk, count - start)
        await queue.addBulk(
          Array.from({ length: size }, (_, i) => ({ name: 'job', data: { n: first + start + i } })),
        )
      }
    },
  }
  // waitUntilFinished adds a 'closing' listener per waiting job: many wait at once in the open loop.
  queue.setMaxListeners(0)
  events?.setMaxListeners(0)
  await queue.waitUntilReady()
  if (events) await events.waitUntilReady()
  emit({ type: 'ready' })

  serveProducer({
    name: 'bullmq-producer',
    workload: config.workload,
    client,
    traffic,
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await Promise.all([queue.close(), events?.close()])
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
