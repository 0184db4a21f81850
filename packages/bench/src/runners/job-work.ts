/**
 * What a benchmark job does on its worker, the same for every system: nothing, a fixed sleep, a
 * sleep drawn from a seeded service-time distribution (some workers slower), or, in suite f, a
 * stream of `req.chunks` chunks sent as fast as the system lets them go.
 */
import { seededRandom } from '../stats.js'

/** The work of one job. */
export type WorkSpec =
  | { kind: 'noop' }
  | { kind: 'sleep'; ms: number }
  | {
      kind: 'service'
      /** Service time = minMs + an exponential draw of mean meanExtraMs, times slowFactor on slow workers. */
      minMs: number
      meanExtraMs: number
      slowFactor: number
      /** Workers 1..slowCount (by their index in the process) are the slow ones. */
      slowCount: number
      seed: number
    }
  | {
      kind: 'stream'
      /** Ms between chunks (a model's pace); none: as fast as the system lets them go. */
      everyMs?: number
      /**
       * With everyMs: each stream waits a random part of it (uniform) before its first chunk, so
       * that the streams, opened at once, do not send their chunks in step.
       */
      isOutOfStep?: boolean
    }

/** The request of a streamed job: its number and how many chunks its handler sends. */
export interface StreamRequest {
  n: number
  chunks: number
}

/** A chunk: its place in the stream and when it was sent. */
export interface StreamChunkData {
  i: number
  /** CLOCK_MONOTONIC in microseconds: comparable between processes of one host. */
  t: number
}

/** Microseconds on CLOCK_MONOTONIC (`process.hrtime`), the same clock in every process. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1_000n)
}

/** Mean service time of a worker under `spec` (ms), timer overshoot not included. */
export function meanServiceMs(spec: WorkSpec, isSlow: boolean): number {
  if (spec.kind === 'sleep') return spec.ms
  if (spec.kind === 'service') return (spec.minMs + spec.meanExtraMs) * (isSlow ? spec.slowFactor : 1)
  return 0
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * The body of a job on worker number `index` (1-based): undefined for no work, otherwise a promise
 * that settles when the job's sleep is over. Each worker has its own seeded generator.
 */
export function jobWork(spec: WorkSpec, index: number): () => Promise<void> | undefined {
  if (spec.kind === 'sleep') return () => sleep(spec.ms)
  if (spec.kind !== 'service') return () => undefined
  const random = seededRandom(spec.seed * 1_000 + index)
  const factor = index <= spec.slowCount ? spec.slowFactor : 1
  return () => sleep((spec.minMs - spec.meanExtraMs * Math.log(1 - random())) * factor)
}

/** The wait before chunk `i` (from 1) of a streamed job of `spec`; undefined for none. */
export function chunkWait(spec: WorkSpec): ((i: number) => Promise<void>) | undefined {
  if (spec.kind !== 'stream' || spec.everyMs === undefined || spec.everyMs <= 0) return undefined
  const ms = spec.everyMs
  if (spec.isOutOfStep === true) return (i) => sleep(i === 1 ? Math.random() * ms : ms)
  return () => sleep(ms)
}

/** Whether a job of `spec` times its body (and returns that time as its result). */
export function isTimed(spec: WorkSpec): boolean {
  return spec.kind === 'sleep' || spec.kind === 'service'
}
