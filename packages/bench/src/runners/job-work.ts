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

/**
 * The pace of the streamed jobs of `spec` (undefined for none): called when a job starts, it gives
 * the wait before its chunk `i` (from 1). Chunk i is due at the job's start (plus its random part of
 * a period, out of step) plus i periods, on the clock, not a period after the chunk before: a
 * timer set a period after the last one starts from the time its event-loop turn began, so the
 * streams a busy process resumes in one turn would stay in step with each other from then on.
 */
export function chunkPacer(spec: WorkSpec): (() => (i: number) => Promise<void>) | undefined {
  if (spec.kind !== 'stream' || spec.everyMs === undefined || spec.everyMs <= 0) return undefined
  const ms = spec.everyMs
  const isOutOfStep = spec.isOutOfStep === true
  return () => {
    const start = performance.now() + (isOutOfStep ? Math.random() * ms : 0)
    return (i) => sleep(Math.max(0, start + i * ms - performance.now()))
  }
}

/** Whether a job of `spec` times its body (and returns that time as its result). */
export function isTimed(spec: WorkSpec): boolean {
  return spec.kind === 'sleep' || spec.kind === 'service'
}
