/**
 * The arguments of one dispatch script call, in the order its header contract gives (read by
 * dispatch-layout.ts), for the callers that build calls themselves: the routing producer and
 * the redis-benchmark runs of the Redis limit.
 */
import type { PoolKeys } from 'switchyard'
import type { ArgName, DispatchLayout } from './dispatch-layout.js'

/** One job of a dispatch call. */
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
  resultTtlMs: number
  timeoutMs: number
}

/** KEYS then ARGV of a dispatch call carrying `jobs`. */
export function dispatchArgs(
  layout: DispatchLayout,
  keys: PoolKeys,
  settings: DispatchCallSettings,
  jobs: readonly DispatchJob[],
): (string | number)[] {
  const leading: Record<ArgName, string | number> = {
    base: keys.base,
    affinityTtl: settings.affinityTtlMs,
    seed: settings.seed,
    producer: settings.producerId,
    resultTtl: settings.resultTtlMs,
    count: jobs.length,
  }
  const args: (string | number)[] = [
    ...layout.keys.map((key) => keys[key]),
    ...layout.args.map((a) => leading[a]),
  ]
  for (const job of jobs) {
    const values: Record<string, string | number> = {
      jobId: job.jobId,
      session: job.session,
      payload: job.payload,
      timeoutMs: settings.timeoutMs,
      attempt: 1,
      maxAttempts: 3,
      excluded: job.excluded,
      race: '',
      copies: 1,
    }
    for (const field of layout.jobFields) args.push(values[field] as string | number)
  }
  return args
}
