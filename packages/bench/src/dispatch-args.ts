/**
 * The arguments of one dispatch script call for the callers that build calls themselves (the
 * dispatch-cost rounds, the routing producer and the redis-benchmark runs of the Redis limit),
 * encoded by the library's own encoder so that Redis parses what the library sends.
 */
import type { PoolKeys } from 'hedgeyard'
import type { LibraryScripts } from './library-scripts.js'

/** One job of a dispatch call: a first attempt, one copy. */
export interface DispatchJob {
  jobId: string
  session: string
  payload: string
  /** Worker ids the job must not go to, joined by ','; '' for none. */
  excluded: string
}

/** What the library's DispatchBatcher passes besides the jobs. */
export interface DispatchCallSettings {
  producerId: string
  seed: number
  affinityTtlMs: number
  /** As a Dispatcher without `resultTtlMs` sends it: undefined, the worker's TTL applies. */
  resultTtlMs: number | undefined
  timeoutMs: number
}

/** Attempts a job may use before it is dead-lettered: the Dispatcher's default. */
const MAX_ATTEMPTS = 3

/** KEYS then ARGV of a dispatch call carrying `jobs`. */
export function dispatchArgs(
  scripts: LibraryScripts,
  keys: PoolKeys,
  settings: DispatchCallSettings,
  jobs: readonly DispatchJob[],
): (string | number)[] {
  const { producerId, seed, affinityTtlMs, resultTtlMs, timeoutMs } = settings
  return scripts.dispatchCallArgs(
    keys,
    { producerId, seed, affinityTtlMs, resultTtlMs },
    jobs.map((job) => ({
      jobId: job.jobId,
      session: job.session,
      payload: job.payload,
      timeoutMs,
      attempt: 1,
      maxAttempts: MAX_ATTEMPTS,
      exclude: job.excluded,
      race: '',
      copies: 1,
    })),
  )
}
