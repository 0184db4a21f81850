/**
 * A BullMQ producer process: a `Queue`, plus a `QueueEvents` when it waits for results. It uses
 * BullMQ's own ways for each case: `addBulk` in chunks for a bulk, and `queue.add` then one
 * listener of the QueueEvents `completed` and `failed` events, which settles the waiting jobs by
 * id, to wait for a result (cheaper than `job.waitUntilFinished` per job, which adds an
 * `isFinished` call per job and needs the worker to keep completed jobs). Suite f's streams,
 * BullMQ's closest equivalent: the jobs added with `addBulk`, their chunks the `progress` events of
 * the QueueEvents, their end its `completed` event.
 *
 *   node dist/runners/bullmq-producer.js '<json BullmqProducerConfig>'
 *
 * Same messages as hedgeyard-producer.ts.
 */
import { Queue, QueueEvents } from 'bullmq'
import type { StreamChunkData } from './job-work.js'
import { countTraffic, emit, fail, readConfig } from './runner-io.js'
import { type ProducerClient, type StreamTally, serveProducer, type Workload } from './workload.js'

/** What the parent passes as the first argument (JSON). */
export interface BullmqProducerConfig {
  redis: string
  queue: string
  workload: Workload
  /** Jobs per addBulk call. */
  bulkChunk: number
  timeoutMs: number
  countCommands?: boolean
}

type Outcome = { value?: unknown; error?: Error }

/** Phases of streams through one QueueEvents: chunks by its `progress` events, ends by `completed`. */
function streamFollower(events: QueueEvents, timeoutMs: number) {
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
  /** Follows streams `first`.. whose jobs get the ids `firstId`..; resolves once all ended. */
  return async (
    first: number,
    count: number,
    firstId: number,
    tally: StreamTally,
    add: () => Promise<void>,
  ) => {
    const streamOf = new Map<string, number>()
    for (let i = 0; i < count; i++) {
      streamOf.set(String(firstId + i), first + i)
      tally.opened(first + i)
    }
    let timer: NodeJS.Timeout | undefined
    const ended = new Promise<void>((resolve, reject) => {
      phase = { tally, streamOf, left: count, done: resolve }
      timer = setTimeout(() => reject(new Error(`streams not ended within ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await add()
      await ended
    } finally {
      clearTimeout(timer)
      phase = undefined
    }
  }
}

/** Waits for results through one listener of a QueueEvents' `completed` and `failed` events. */
function eventWaiter(events: QueueEvents): (jobId: string) => Promise<unknown> {
  const waiting = new Map<string, (outcome: Outcome) => void>()
  const early = new Map<string, Outcome>()
  const settle = (jobId: string, outcome: Outcome) => {
    const w = waiting.get(jobId)
    waiting.delete(jobId)
    if (w) w(outcome)
    else early.set(jobId, outcome)
  }
  events.on('completed', ({ jobId, returnvalue }) => {
    const value = typeof returnvalue === 'string' ? (JSON.parse(returnvalue) as unknown) : returnvalue
    settle(jobId, { value })
  })
  events.on('failed', ({ jobId, failedReason }) => settle(jobId, { error: new Error(failedReason) }))
  const toPromise = (o: Outcome) => (o.error ? Promise.reject(o.error) : Promise.resolve(o.value))
  return (jobId) => {
    const done = early.get(jobId)
    early.delete(jobId)
    return done
      ? toPromise(done)
      : new Promise<Outcome>((resolve) => waiting.set(jobId, resolve)).then(toPromise)
  }
}

async function main(): Promise<void> {
  const config = readConfig<BullmqProducerConfig>()
  const traffic = countTraffic(config.countCommands === true)
  const url = new URL(config.redis)
  const connection = { host: url.hostname, port: Number(url.port) }
  const queue = new Queue(config.queue, { connection })
  const events =
    config.workload.kind === 'bulk'
      ? undefined
      : new QueueEvents(config.queue, { connection: { ...connection, maxRetriesPerRequest: null } })
  const isStreams = config.workload.kind === 'streams'
  const waitFor = events && !isStreams ? eventWaiter(events) : undefined
  const follow = events && isStreams ? streamFollower(events, config.timeoutMs) : undefined
  const addBulk = async (first: number, count: number, data: (n: number) => object) => {
    for (let start = 0; start < count; start += config.bulkChunk) {
      const size = Math.min(config.bulkChunk, count - start)
      await queue.addBulk(
        Array.from({ length: size }, (_, i) => ({ name: 'job', data: data(first + start + i) })),
      )
    }
  }
  const client: ProducerClient = {
    async submitAndWait(n) {
      const job = await queue.add('job', { n })
      if (waitFor === undefined) throw new Error('bullmq-producer: a bulk workload waits for no result')
      return waitFor(job.id as string)
    },
    submitBulk: (first, count) => addBulk(first, count, (n) => ({ n })),
    async openStreams(first, count, chunks, tally) {
      // Events may come before addBulk answers: BullMQ numbers the jobs of a queue 1, 2, ... and
      // job 1 is the one added at start, so stream n is job n + 2.
      await follow?.(first, count, first + 2, tally, () => addBulk(first, count, (n) => ({ n, chunks })))
    },
  }
  await queue.waitUntilReady()
  if (events) await events.waitUntilReady()
  // The first add connects (and numbers job 1); the warm-up must not pay for the connection.
  if (isStreams) await queue.add('job', { n: -1, chunks: 0 })
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
