/**
 * How each system is deployed in the comparison suites: one producer process and one worker
 * process with the same total concurrency, Hedgeyard and BullMQ each set up as its own docs
 * recommend; in the latency suites also the plain-commands baseline and the bare round trip
 * through Redis, and in the open loop its floor, one process with no Redis.
 */
import type { BenchContext, PairSpec, SystemName } from './measure-run.js'
import type { BullmqProducerConfig } from './runners/bullmq-producer.js'
import type { BullmqWorkerConfig } from './runners/bullmq-worker.js'
import type { HedgeyardProducerConfig } from './runners/hedgeyard-producer.js'
import type { HedgeyardWorkerConfig } from './runners/hedgeyard-worker.js'
import type { WorkSpec } from './runners/job-work.js'
import type { LocalProducerConfig } from './runners/local-producer.js'
import type { PlainProducerConfig } from './runners/plain-producer.js'
import type { PlainWorkerConfig } from './runners/plain-worker.js'
import type { Workload } from './runners/workload.js'

/** The deployment of each system, as docs/benchmarks.md states it. */
export const DEPLOYMENT = Object.freeze({
  /** Hedgeyard: one worker (one stream) with all the concurrency, and a queue no run can fill. */
  hedgeyardQueueCapacity: 100_000,
  /** Hedgeyard: jobs read ahead of free slots (`prefetch`), the setting its docs give for short jobs. */
  hedgeyardPrefetch: 50,
  /** BullMQ: addBulk chunk size. */
  bullmqBulkChunk: 1_000,
  /** BullMQ: finished jobs the worker keeps (0: removed as they finish). */
  bullmqKeepCompleted: 0,
  bullmqKeepFailed: 5_000,
  timeoutMs: 120_000,
})

/** What a run needs: a name for its pool/queue, the worker's concurrency and work, the load. */
export interface PairOptions {
  name: string
  concurrency: number
  work: WorkSpec
  /** Suite f's streams (`kind: 'streams'`) go with `work: { kind: 'stream' }`. */
  workload: Workload
  /** Hedgeyard: the workers' result TTL, which each job's output stream is kept for too. */
  resultTtlMs?: number
  /** Each process counts the commands it sends (a counted run: see runners/runner-io.ts). */
  countCommands?: boolean
}

/** The producer and worker processes of `system` for one run. */
export function pairFor(system: SystemName, ctx: BenchContext, o: PairOptions): PairSpec {
  const d = DEPLOYMENT
  const { concurrency, work, workload } = o
  const base = { redis: ctx.redisUrl, ...(o.countCommands === true ? { countCommands: true } : {}) }
  if (system === 'local') {
    const producer: LocalProducerConfig = { workload, concurrency, work }
    return { system, producer: { runner: 'local-producer', config: producer } }
  }
  if (system === 'plain' || system === 'pubsub') {
    const plain = { ...base, stream: o.name, transport: system === 'plain' ? 'stream' : 'pubsub' } as const
    const worker: PlainWorkerConfig = { ...plain, concurrency, work }
    const producer: PlainProducerConfig = { ...plain, workload }
    return {
      system,
      worker: { runner: 'plain-worker', config: worker },
      producer: { runner: 'plain-producer', config: producer },
    }
  }
  if (system === 'hedgeyard') {
    const worker: HedgeyardWorkerConfig = {
      ...base,
      pool: o.name,
      idPrefix: 'bench-worker',
      count: 1,
      concurrency,
      queueCapacity: d.hedgeyardQueueCapacity,
      ...(work.kind === 'stream' ? {} : { prefetch: d.hedgeyardPrefetch }),
      ...(o.resultTtlMs === undefined ? {} : { resultTtlMs: o.resultTtlMs }),
      work,
    }
    const producer: HedgeyardProducerConfig = { ...base, pool: o.name, workload, timeoutMs: d.timeoutMs }
    return {
      system,
      worker: { runner: 'hedgeyard-worker', config: worker },
      producer: { runner: 'hedgeyard-producer', config: producer },
    }
  }
  const worker: BullmqWorkerConfig = {
    ...base,
    queue: o.name,
    concurrency,
    keepCompleted: d.bullmqKeepCompleted,
    keepFailed: d.bullmqKeepFailed,
    work,
  }
  const producer: BullmqProducerConfig = {
    ...base,
    queue: o.name,
    workload,
    bulkChunk: d.bullmqBulkChunk,
    timeoutMs: d.timeoutMs,
  }
  return {
    system,
    worker: { runner: 'bullmq-worker', config: worker },
    producer: { runner: 'bullmq-producer', config: producer },
  }
}

/** The two systems the targets compare. */
const COMPARED: readonly SystemName[] = ['hedgeyard', 'bullmq']

/**
 * The systems of the latency suites: the two compared, the plain-commands baseline, and the bare
 * round trip through Redis (the two hops every dispatcher through Redis makes).
 */
export const LATENCY_SYSTEMS: readonly SystemName[] = [...COMPARED, 'plain', 'pubsub']

/** The open loop adds its floor: the same load generator and job body in one process, no Redis. */
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
