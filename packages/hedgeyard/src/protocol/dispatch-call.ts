import type { PoolKeys } from './keys.js'

/** One job of a dispatch script call. */
export interface DispatchItem {
  jobId: string
  session: string
  payload: string
  timeoutMs: number
  attempt: number
  /** Past this many attempts (a worker lost with the job each time) the job is dead-lettered. */
  maxAttempts: number
  /** Workers this copy must not go to, joined by ','; '' for none. */
  exclude: string
  /** '' for a plain job, 'h' when copies may race, 't' for tied copies. */
  race: '' | 'h' | 't'
  /** Copies to queue at once, each on another worker (2 for tied). */
  copies: number
}

/** What a dispatch call carries besides its jobs. */
export interface DispatchCallSettings {
  producerId: string
  affinityTtlMs: number
  /** The result TTL the producer asked for; undefined leaves it to the job's worker. */
  resultTtlMs: number | undefined
  /** Seeds the script's tie-breaking between equally loaded workers. */
  seed: number
}

/** A first attempt with no session, exclusion or race, queued once: most jobs of a bulk submit. */
function isPlain(item: DispatchItem): boolean {
  return (
    item.session === '' && item.attempt === 1 && item.exclude === '' && item.race === '' && item.copies === 1
  )
}

/**
 * KEYS then ARGV of one dispatch script call (see the header of dispatch.lua). A run of plain jobs
 * sharing a timeout and an attempt limit becomes one 'p' header and two arguments per job; any
 * other job is an 'f' record of nine fields. Every argument costs ioredis and Redis some work to
 * encode and parse, so a bulk submit sends about a fifth of what one record per job would.
 */
export function dispatchCallArgs(
  keys: PoolKeys,
  settings: DispatchCallSettings,
  items: readonly DispatchItem[],
): (string | number)[] {
  const args: (string | number)[] = [
    keys.load,
    keys.ready,
    keys.alive,
    keys.base,
    settings.affinityTtlMs,
    settings.seed,
    settings.producerId,
    settings.resultTtlMs ?? '',
    items.length,
  ]
  let i = 0
  while (i < items.length) {
    const item = items[i] as DispatchItem
    if (!isPlain(item)) {
      args.push(
        'f',
        item.jobId,
        item.session,
        item.payload,
        item.timeoutMs,
        item.attempt,
        item.maxAttempts,
        item.exclude,
        item.race,
        item.copies,
      )
      i++
      continue
    }
    const countAt = args.length + 3
    args.push('p', item.timeoutMs, item.maxAttempts, 0)
    let k = 0
    for (; i < items.length; i++, k++) {
      const next = items[i] as DispatchItem
      if (!isPlain(next) || next.timeoutMs !== item.timeoutMs || next.maxAttempts !== item.maxAttempts) break
      args.push(next.jobId, next.payload)
    }
    args[countAt] = k
  }
  return args
}
