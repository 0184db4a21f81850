import type { Connection } from '../../redis/connection.js'
import {
  affinityKey,
  classLimitsKey,
  copiesKey,
  inflightKey,
  type PoolKeys,
  tenantQuotaKey,
} from '../keys.js'
import { DEFAULT_LIMIT_CLASS } from '../wire.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** dispatch.lua: places a batch of jobs on the least-loaded workers (see its header). */
export const DISPATCH: ScriptSpec = { name: 'dispatch', fixedKeys: 5, hasKeysPerItem: true }

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
  race: '' | 'h' | 't' | 's'
  /** Copies to queue at once, each on another worker (2 for tied). */
  copies: number
  /** Units the job takes from the pool's cost budget. @defaultValue 1 */
  cost?: number
  /** The tenant whose class limits apply to the job; none when undefined. */
  limitKey?: string
  /** The tenant's class (with limitKey only). */
  limitClass?: string
  /** The W3C traceparent of the copy's span (with an OpenTelemetry SDK only). */
  traceparent?: string | undefined
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

/** What the dispatch script decided for one job. */
export type DispatchOutcome =
  | { status: 'queued'; workerId: string; isAffinityHit: boolean }
  | { status: 'SATURATED' | 'NO_WORKERS' }
  /** Over the pool's quota, or (`isTenant`) over the quota of the job's tenant. */
  | { status: 'RATE_LIMITED'; retryAfterMs: number; isTenant: boolean }
  /** The job's tenant has `cap` jobs in flight, as many as its class allows. */
  | { status: 'TENANT_FULL'; cap: number }
  /** The limits of the job's class cannot be read: why, naming the key and field. */
  | { status: 'BAD_LIMITS'; message: string }

/**
 * A first attempt with no session, exclusion, race or tenant, queued once: most jobs of a bulk
 * submit.
 */
function isPlain(item: DispatchItem): boolean {
  return (
    item.session === '' &&
    item.attempt === 1 &&
    item.exclude === '' &&
    item.race === '' &&
    item.copies === 1 &&
    item.limitKey === undefined &&
    item.traceparent === undefined
  )
}

/**
 * KEYS and ARGV of one dispatch call (see the header of dispatch.lua). A run of plain jobs
 * sharing a timeout and an attempt limit becomes one 'p' header and two arguments per job; any
 * other job is an 'f' record of thirteen fields, with its affinity, copies and tenant keys in KEYS. Every
 * argument costs ioredis and Redis some work to encode and parse, so a bulk submit sends about a
 * fifth of what one record per job would.
 */
export function dispatchArgs(
  keys: PoolKeys,
  settings: DispatchCallSettings,
  items: readonly DispatchItem[],
): { keys: string[]; args: (string | number)[] } {
  const callKeys = [keys.load, keys.ready, keys.alive, keys.limits, keys.quota]
  const args: (string | number)[] = [
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
      if (item.session !== '') callKeys.push(affinityKey(keys, item.session))
      if (item.race !== '') callKeys.push(copiesKey(keys, item.jobId))
      const limitClass = item.limitKey === undefined ? '' : (item.limitClass ?? DEFAULT_LIMIT_CLASS)
      if (item.limitKey !== undefined) {
        callKeys.push(
          classLimitsKey(keys, limitClass),
          tenantQuotaKey(keys, limitClass, item.limitKey),
          inflightKey(keys, item.limitKey),
        )
      }
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
        item.cost ?? 1,
        item.limitKey ?? '',
        limitClass,
        item.traceparent ?? '',
      )
      i++
      continue
    }
    const countAt = args.length + 4
    const cost = item.cost ?? 1
    args.push('p', item.timeoutMs, item.maxAttempts, cost, 0)
    let k = 0
    for (; i < items.length; i++, k++) {
      const next = items[i] as DispatchItem
      if (
        !isPlain(next) ||
        next.timeoutMs !== item.timeoutMs ||
        next.maxAttempts !== item.maxAttempts ||
        (next.cost ?? 1) !== cost
      )
        break
      args.push(next.jobId, next.payload)
    }
    args[countAt] = k
  }
  return { keys: callKeys, args }
}

/** Reads the script's reply: one outcome per job, in order. */
export function parseDispatchReply(reply: unknown, count: number): DispatchOutcome[] {
  const flat = replyArray(DISPATCH, reply, 2 * count)
  const outcomes: DispatchOutcome[] = new Array(count)
  for (let i = 0; i < count; i++) {
    const target = flat[2 * i]
    const hit = flat[2 * i + 1]
    if (
      (target === 'RATE_LIMITED' || target === 'TENANT_LIMITED') &&
      typeof hit === 'number' &&
      Number.isInteger(hit) &&
      hit >= 1
    ) {
      outcomes[i] = { status: 'RATE_LIMITED', retryAfterMs: hit, isTenant: target === 'TENANT_LIMITED' }
      continue
    }
    if (target === 'TENANT_FULL' && typeof hit === 'number' && Number.isInteger(hit) && hit >= 1) {
      outcomes[i] = { status: 'TENANT_FULL', cap: hit }
      continue
    }
    if (target === 'BAD_LIMITS' && typeof hit === 'string') {
      outcomes[i] = { status: 'BAD_LIMITS', message: hit }
      continue
    }
    if (typeof target !== 'string' || (hit !== 0 && hit !== 1)) {
      throw badReply(DISPATCH, `job ${i + 1} as ${String(target)} ${String(hit)}`)
    }
    outcomes[i] =
      target === 'SATURATED' || target === 'NO_WORKERS'
        ? { status: target }
        : { status: 'queued', workerId: target, isAffinityHit: hit === 1 }
  }
  return outcomes
}

/**
 * Dispatches a batch of jobs in one script call.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails,
 * PROTOCOL_ERROR for a reply the script should not give.
 */
export async function dispatchJobs(
  conn: Connection,
  keys: PoolKeys,
  settings: DispatchCallSettings,
  items: readonly DispatchItem[],
): Promise<DispatchOutcome[]> {
  const call = dispatchArgs(keys, settings, items)
  return parseDispatchReply(await callScript(conn, DISPATCH, call.keys, call.args), items.length)
}
