import { performance } from 'node:perf_hooks'
import { isHedgeyardError } from 'hedgeyard'
import { seededRandom } from './bench-pool.js'

/** What one open-loop run measured. */
export interface LoadRun {
  /** Latency of each successful request (ms), from its scheduled send time to its result. */
  latenciesMs: number[]
  /** Failed requests by error code. */
  errors: Record<string, number>
  /** Wall time from the first scheduled send to the last result (ms). */
  durationMs: number
  /** How late the sender got behind its schedule at worst (ms): a large value means it could not keep up. */
  maxSendLagMs: number
}

/** Arrival offsets (ms from the start) of a Poisson process of `ratePerSec`, from a seed. */
export function poissonOffsets(count: number, ratePerSec: number, seed: number): Float64Array {
  const random = seededRandom(seed)
  const offsets = new Float64Array(count)
  let t = 0
  for (let i = 0; i < count; i++) {
    t += (-Math.log(1 - random()) / ratePerSec) * 1_000
    offsets[i] = t
  }
  return offsets
}

/**
 * Open loop: sends request `i` at its scheduled time whatever the earlier ones are doing, and
 * measures its latency from that scheduled time, so a sender that falls behind (or a pool that
 * queues) shows up in the latencies instead of hiding in a slower arrival rate.
 */
export function runOpenLoop(
  submit: (index: number) => Promise<unknown>,
  offsets: Float64Array,
): Promise<LoadRun> {
  const count = offsets.length
  const latenciesMs: number[] = []
  const errors: Record<string, number> = {}
  let maxSendLagMs = 0
  const startAt = performance.now() + 5
  return new Promise((resolve) => {
    if (count === 0) {
      resolve({ latenciesMs, errors, durationMs: 0, maxSendLagMs })
      return
    }
    let next = 0
    let settled = 0
    const onSettled = () => {
      if (++settled === count) {
        resolve({ latenciesMs, errors, durationMs: performance.now() - startAt, maxSendLagMs })
      }
    }
    const send = (index: number, scheduledAt: number) => {
      submit(index).then(
        () => {
          latenciesMs.push(performance.now() - scheduledAt)
          onSettled()
        },
        (err: unknown) => {
          const code = isHedgeyardError(err) ? err.code : err instanceof Error ? err.name : 'unknown'
          errors[code] = (errors[code] ?? 0) + 1
          onSettled()
        },
      )
    }
    const tick = () => {
      const now = performance.now()
      while (next < count && startAt + (offsets[next] as number) <= now) {
        const scheduledAt = startAt + (offsets[next] as number)
        maxSendLagMs = Math.max(maxSendLagMs, now - scheduledAt)
        send(next++, scheduledAt)
      }
      if (next < count) setTimeout(tick, startAt + (offsets[next] as number) - performance.now())
    }
    setTimeout(tick, 5)
  })
}

/** Closed loop: `inFlight` requests at a time until `count` have settled (for calibration). */
export async function runClosedLoop(
  submit: (index: number) => Promise<unknown>,
  count: number,
  inFlight: number,
): Promise<number> {
  let next = 0
  let failed = 0
  const lane = async () => {
    while (next < count) {
      const index = next++
      await submit(index).catch(() => {
        failed++
      })
    }
  }
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane))
  return failed
}

/** Nearest-rank percentile of ascending `sorted` (p in 0..1); NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)))
  return sorted[rank - 1] as number
}
