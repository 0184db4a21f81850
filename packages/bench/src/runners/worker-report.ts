import type { RedisTraffic } from './runner-io.js'

/** What a worker process reports: counters since the last mark. */
export interface WorkerReport extends RedisTraffic {
  type: 'report'
  processed: number
  /** CPU time of this process since the mark (us). */
  cpuUs: number
  /** hrtime (ns, as a string) when the last job since the mark finished; '0' for none. */
  lastDoneNs: string
  /** Jobs processed per worker id. */
  perWorker: Record<string, number>
  /** Time spent in job bodies per worker id (ms), for the utilisation actually reached. */
  busyMsPerWorker: Record<string, number>
  /** How long the job bodies took (ms; sleeps overshoot their timers): p50, p99, max; null for no-ops. */
  workMs: { p50: number; p99: number; max: number } | null
}

/** p50, p99 and max of the job bodies' durations. */
export function workPercentiles(samples: number[]): WorkerReport['workMs'] {
  if (samples.length === 0) return null
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] as number
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] as number }
}
