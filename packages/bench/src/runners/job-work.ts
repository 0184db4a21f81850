/**
 * What a benchmark job does on its worker, the same for every system: nothing, a fixed
 * sleep, or a sleep drawn from a seeded service-time distribution (some workers slower).
 */
import { seededRandom } from '../bench-pool.js'

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

/** Mean service time of a worker under `spec` (ms), timer overshoot not included. */
export function meanServiceMs(spec: WorkSpec, isSlow: boolean): number {
  switch (spec.kind) {
    case 'noop':
      return 0
    case 'sleep':
      return spec.ms
    case 'service':
      return (spec.minMs + spec.meanExtraMs) * (isSlow ? spec.slowFactor : 1)
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * The job body of worker number `index` (1-based): returns undefined for no work, otherwise a
 * promise that settles when the job's sleep is over. Each worker has its own seeded generator.
 */
export function jobWork(spec: WorkSpec, index: number): () => Promise<void> | undefined {
  switch (spec.kind) {
    case 'noop':
      return () => undefined
    case 'sleep':
      return () => sleep(spec.ms)
    case 'service': {
      const random = seededRandom(spec.seed * 1_000 + index)
      const factor = index <= spec.slowCount ? spec.slowFactor : 1
      return () => sleep((spec.minMs - spec.meanExtraMs * Math.log(1 - random())) * factor)
    }
  }
}
