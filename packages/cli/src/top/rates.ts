import type { PoolSnapshot } from 'hedgeyard'
import { count } from './format.js'

/** What a pool did between two snapshots. */
export interface PoolRates {
  /** Jobs whose handler finished, per second. */
  jobsPerSecond: number
  /** Share of those jobs that failed (0..1); undefined when none finished. */
  errorRatio: number | undefined
}

/**
 * Jobs per second and error ratio from the change in the workers' `processed` and `errors`
 * counters between two snapshots (timed by Redis's clock). Summed per worker, not over the pool:
 * a worker that left would otherwise make the sum drop. A worker that is new, or whose counters
 * went back (it registered again), counts all it shows, as a Prometheus counter reset does.
 * Undefined without an earlier snapshot.
 */
export function poolRates(previous: PoolSnapshot | undefined, current: PoolSnapshot): PoolRates | undefined {
  if (previous === undefined) return undefined
  const seconds = (current.at - previous.at) / 1_000
  if (!(seconds > 0)) return undefined
  const before = new Map(previous.workers.map((w) => [w.workerId, w]))
  let processed = 0
  let errors = 0
  for (const w of current.workers) {
    const was = before.get(w.workerId)
    const p = count(w.processed)
    const e = count(w.errors)
    const wasP = count(was?.processed)
    const wasE = count(was?.errors)
    const isReset = was === undefined || p < wasP || e < wasE
    processed += isReset ? p : p - wasP
    errors += isReset ? e : e - wasE
  }
  return {
    jobsPerSecond: processed / seconds,
    errorRatio: processed > 0 ? Math.min(1, errors / processed) : undefined,
  }
}
