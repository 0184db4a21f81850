/**
 * How each system is deployed in the comparison suites: one producer process and one worker
 * process with the same total concurrency, Switchyard and BullMQ each set up as its own docs
 * recommend, and (latency suites) the plain-commands baseline; the open loop's floor is one process.
 */
import type { BenchContext, PairSpec, SystemName } from './measure-run.js'
import type { BullmqProducerConfig } from './runners/bullmq-producer.js'
import type { BullmqWorkerConfig } from './runners/bullmq-worker.js'
import type { WorkSpec } from './runners/job-work.js'
import type { LocalProducerConfig } from './runners/local-producer.js'
import type { PlainProducerConfig } from './runners/plain-producer.js'
import type { PlainWorkerConfig } from './runners/plain-worker.js'
import type { SwitchyardProducerConfig } from './runners/switchyard-producer.js'
import type { SwitchyardWorkerConfig } from './runners/switchyard-worker.js'
import type { Workload } from './runners/workload.js'

/** The deployment of each system, as the doc states it. */
export const DEPLOYMENT = Object.freeze({
  /** Switchyard: one worker (one stream) with all the concurrency, and a queue no run can fill. */
  switchyardQueueCapacity: 100_000,
  /**
   * Switchyard: jobs the worker reads ahead of its free slots (`prefetch`), the setting its docs
   * give for short jobs: the default, 0, reads only as many as there are free slots.
   */
  switchyardPrefetch: 50,
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
  if (system === 'switchyard') {
    const worker: SwitchyardWorkerConfig = {
      redis: ctx.redisUrl,
      pool: o.name,
      idPrefix: 'bench-worker',
      count: 1,
      concurrency: o.concurrency,
      queueCapacity: d.switchyardQueueCapacity,
      prefetch: d.switchyardPrefetch,
      work: o.work,
    }
    const producer: SwitchyardProducerConfig = {
      redis: ctx.redisUrl,
      pool: o.name,
      workload: o.workload,
      timeoutMs: d.timeoutMs,
    }
    return {
      system,
      worker: { runner: 'switchyard-worker', config: worker },
      producer: { runner: 'switchyard-producer', config: producer },
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

/**
 * The systems of the latency suites: the two compared, the plain-commands baseline, and the bare
 * round trip through Redis that any dispatcher through Redis makes at least.
 */
export const LATENCY_SYSTEMS: readonly SystemName[] = ['switchyard', 'bullmq', 'plain', 'pubsub']

/**
 * The open loop adds its floor: the same load generator and job body in one process, with no
 * Redis and no dispatch (what this machine's timers give a request before any dispatcher).
 */
export const OPEN_LOOP_SYSTEMS: readonly SystemName[] = [...LATENCY_SYSTEMS, 'local']

/**
 * Run order of repetition `rep` (1-based): the systems rotate (A B, then B A; with three, A B C,
 * B C A, C A B), so each takes each place in turn and a drift of the machine favours none.
 */
export function systemOrder(
  rep: number,
  systems: readonly SystemName[] = ['switchyard', 'bullmq'],
): SystemName[] {
  const shift = (rep - 1) % systems.length
  return [...systems.slice(shift), ...systems.slice(0, shift)]
}

export const SYSTEM_LABEL: Record<SystemName, string> = {
  switchyard: 'Switchyard',
  bullmq: 'BullMQ',
  plain: 'plain commands',
  pubsub: 'bare round trip (PUBLISH)',
  local: 'no dispatch (one process)',
}
