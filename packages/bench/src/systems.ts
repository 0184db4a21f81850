/**
 * How each system is deployed in the comparison suites: one producer process and one worker
 * process with the same total concurrency, Hedgeyard and BullMQ each set up as its own docs
 * recommend; in the latency suites also the plain-commands baseline and the bare round trip
 * through Redis, and in the open loop its floor, one process with no Redis.
 */
import type { BenchContext, PairSpec, SystemName } from './measure-run.js'
import type { BullmqProducerConfig } from './runners/bullmq-producer.js'
import type { BullmqStreamProducerConfig } from './runners/bullmq-stream-producer.js'
import type { BullmqStreamWorkerConfig } from './runners/bullmq-stream-worker.js'
import type { BullmqWorkerConfig } from './runners/bullmq-worker.js'
import type { HedgeyardProducerConfig } from './runners/hedgeyard-producer.js'
import type { HedgeyardStreamProducerConfig } from './runners/hedgeyard-stream-producer.js'
import type { HedgeyardStreamWorkerConfig } from './runners/hedgeyard-stream-worker.js'
import type { HedgeyardWorkerConfig } from './runners/hedgeyard-worker.js'
import type { WorkSpec } from './runners/job-work.js'
import type { LocalProducerConfig } from './runners/local-producer.js'
import type { PlainProducerConfig } from './runners/plain-producer.js'
import type { PlainWorkerConfig } from './runners/plain-worker.js'
import type { StreamLoad } from './runners/stream-load.js'
import type { Workload } from './runners/workload.js'

/** The deployment of each system, as the doc states it. */
export const DEPLOYMENT = Object.freeze({
  /** Hedgeyard: one worker (one stream) with all the concurrency, and a queue no run can fill. */
  hedgeyardQueueCapacity: 100_000,
  /**
   * Hedgeyard: jobs the worker reads ahead of its free slots (`prefetch`), the setting its docs
   * give for short jobs: the default, 0, reads only as many as there are free slots.
   */
  hedgeyardPrefetch: 50,
  /** BullMQ: addBulk chunk size. */
  bullmqBulkChunk: 1_000,
  /** BullMQ: finished jobs the worker keeps (0: removed as they finish, as for throughput). */
  bullmqKeepCompleted: 0,
  bullmqKeepFailed: 5_000,
  /**
   * BullMQ: how a producer waits for results. One listener of QueueEvents' `completed` events,
   * rather than `job.waitUntilFinished` per job, which adds an `isFinished` script call per job
   * and needs the worker to keep completed jobs; the listener is the cheaper of BullMQ's two ways.
   */
  bullmqWaitMode: 'events' as const,
  timeoutMs: 120_000,
})

/** What a comparison run needs: a name for its pool/queue, the worker's concurrency and work, the load. */
export interface PairOptions {
  name: string
  concurrency: number
  work: WorkSpec
  workload: Workload
}

/** The producer and worker processes of `system` for one run. */
export function pairFor(system: SystemName, ctx: BenchContext, o: PairOptions): PairSpec {
  const d = DEPLOYMENT
  if (system === 'hedgeyard') {
    const worker: HedgeyardWorkerConfig = {
      redis: ctx.redisUrl,
      pool: o.name,
      idPrefix: 'bench-worker',
      count: 1,
      concurrency: o.concurrency,
      queueCapacity: d.hedgeyardQueueCapacity,
      prefetch: d.hedgeyardPrefetch,
      work: o.work,
    }
    const producer: HedgeyardProducerConfig = {
      redis: ctx.redisUrl,
      pool: o.name,
      workload: o.workload,
      timeoutMs: d.timeoutMs,
    }
    return {
      system,
      worker: { runner: 'hedgeyard-worker', config: worker },
      producer: { runner: 'hedgeyard-producer', config: producer },
    }
  }
  if (system === 'local') {
    const producer: LocalProducerConfig = { workload: o.workload, concurrency: o.concurrency, work: o.work }
    return { system, producer: { runner: 'local-producer', config: producer } }
  }
  if (system === 'plain' || system === 'pubsub') {
    const transport = system === 'plain' ? 'stream' : 'pubsub'
    const worker: PlainWorkerConfig = {
      redis: ctx.redisUrl,
      stream: o.name,
      transport,
      concurrency: o.concurrency,
      work: o.work,
    }
    const producer: PlainProducerConfig = {
      redis: ctx.redisUrl,
      stream: o.name,
      transport,
      workload: o.workload,
    }
    return {
      system,
      worker: { runner: 'plain-worker', config: worker },
      producer: { runner: 'plain-producer', config: producer },
    }
  }
  const worker: BullmqWorkerConfig = {
    redis: ctx.redisUrl,
    queue: o.name,
    concurrency: o.concurrency,
    keepCompleted: d.bullmqKeepCompleted,
    keepFailed: d.bullmqKeepFailed,
    work: o.work,
  }
  const producer: BullmqProducerConfig = {
    redis: ctx.redisUrl,
    queue: o.name,
    workload: o.workload,
    bulkChunk: d.bullmqBulkChunk,
    timeoutMs: d.timeoutMs,
    waitMode: d.bullmqWaitMode,
  }
  return {
    system,
    worker: { runner: 'bullmq-worker', config: worker },
    producer: { runner: 'bullmq-producer', config: producer },
  }
}

/** What a streaming run needs (suite f): a pool/queue name, the worker's concurrency, the streams. */
export interface StreamPairOptions {
  name: string
  concurrency: number
  load: StreamLoad
  /** Hedgeyard: the workers' result TTL, which each job's output stream is kept for too. */
  resultTtlMs: number
}

/**
 * The streaming processes of `system` (suite f), laid out as in the other suites: one worker
 * process whose single worker has all the concurrency, one producer process. Hedgeyard streams
 * with an async generator handler and `dispatcher.stream`; BullMQ with `job.updateProgress` and
 * the `progress` events of the producer's `QueueEvents`, its closest equivalent.
 */
export function streamPairFor(
  system: 'hedgeyard' | 'bullmq',
  ctx: BenchContext,
  o: StreamPairOptions,
): PairSpec {
  const d = DEPLOYMENT
  if (system === 'hedgeyard') {
    const worker: HedgeyardStreamWorkerConfig = {
      redis: ctx.redisUrl,
      pool: o.name,
      idPrefix: 'bench-worker',
      count: 1,
      concurrency: o.concurrency,
      queueCapacity: d.hedgeyardQueueCapacity,
      resultTtlMs: o.resultTtlMs,
    }
    const producer: HedgeyardStreamProducerConfig = {
      redis: ctx.redisUrl,
      pool: o.name,
      load: o.load,
      timeoutMs: d.timeoutMs,
    }
    return {
      system,
      worker: { runner: 'hedgeyard-stream-worker', config: worker },
      producer: { runner: 'hedgeyard-stream-producer', config: producer },
    }
  }
  const worker: BullmqStreamWorkerConfig = {
    redis: ctx.redisUrl,
    queue: o.name,
    concurrency: o.concurrency,
    keepCompleted: d.bullmqKeepCompleted,
    keepFailed: d.bullmqKeepFailed,
  }
  const producer: BullmqStreamProducerConfig = {
    redis: ctx.redisUrl,
    queue: o.name,
    load: o.load,
    bulkChunk: d.bullmqBulkChunk,
    timeoutMs: d.timeoutMs,
  }
  return {
    system,
    worker: { runner: 'bullmq-stream-worker', config: worker },
    producer: { runner: 'bullmq-stream-producer', config: producer },
  }
}

/** The two systems the targets compare. */
const COMPARED: readonly SystemName[] = ['hedgeyard', 'bullmq']

/**
 * The systems of the latency suites: the two compared, the plain-commands baseline, and the bare
 * round trip through Redis (the two hops every dispatcher through Redis makes).
 */
export const LATENCY_SYSTEMS: readonly SystemName[] = [...COMPARED, 'plain', 'pubsub']

/**
 * The open loop adds its floor: the same load generator and job body in one process, with no
 * Redis and no dispatch (what this machine's timers give a request before any dispatcher).
 */
export const OPEN_LOOP_SYSTEMS: readonly SystemName[] = [...LATENCY_SYSTEMS, 'local']

/**
 * Run order of repetition `rep` (1-based). Hedgeyard and BullMQ always run next to each other, in
 * turn first (A B, then B A), so the ratio of each repetition compares neighbours and a drift of
 * the machine favours neither. The other systems rotate among themselves, after the pair in odd
 * repetitions and before it in even ones.
 */
export function systemOrder(rep: number, systems: readonly SystemName[] = COMPARED): SystemName[] {
  const isOdd = rep % 2 === 1
  const pair = isOdd ? [...COMPARED] : [...COMPARED].reverse()
  const others = systems.filter((s) => !COMPARED.includes(s))
  const shift = others.length === 0 ? 0 : (rep - 1) % others.length
  const rotated = [...others.slice(shift), ...others.slice(0, shift)]
  return isOdd ? [...pair, ...rotated] : [...rotated, ...pair]
}

export const SYSTEM_LABEL: Record<SystemName, string> = {
  hedgeyard: 'Hedgeyard',
  bullmq: 'BullMQ',
  plain: 'plain commands',
  pubsub: 'bare round trip (PUBLISH)',
  local: 'no dispatch (one process)',
}
