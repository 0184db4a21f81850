import { type Connection, redisFailure } from '../../redis/connection.js'
import {
  affinityKey,
  classLimitsKey,
  copiesKey,
  inflightKey,
  type PoolKeys,
  sentKey,
  tenantQuotaKey,
} from '../keys.js'
import { DEFAULT_LIMIT_CLASS, RECEIPT_SLOTS } from '../wire.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** dispatch.lua: places a batch of jobs on the least-loaded workers (see its header). */
export const DISPATCH: ScriptSpec = { name: 'dispatch', fixedKeys: 6, hasKeysPerItem: true }

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
  /**
   * The producer's count of its dispatch calls: the call's receipt goes in slot `callNumber mod
   * RECEIPT_SLOTS` of the producer's receipts (see {@link readDispatchReceipt}). @defaultValue 0
   */
  callNumber?: number
  /**
   * How long the producer's receipts are kept after this call: at least as long as any job it has
   * in doubt may still wait. @defaultValue {@link DEFAULT_RECEIPT_TTL_MS}
   */
  receiptTtlMs?: number
}

/** How long receipts are kept when the caller does not say. */
export const DEFAULT_RECEIPT_TTL_MS = 600_000

/**
 * What the dispatch script decided for one job. Jobs may share one outcome object (the jobs of
 * a run placed on the same worker do): it is read, never changed.
 */
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
 * A first attempt with no session, exclusion, race or tenant, queued once, whose payload has no
 * line break (JSON has none): most jobs of a bulk submit.
 */
function isPlain(item: DispatchItem): boolean {
  return (
    item.session === '' &&
    item.attempt === 1 &&
    item.exclude === '' &&
    item.race === '' &&
    item.copies === 1 &&
    item.limitKey === undefined &&
    item.traceparent === undefined &&
    !item.payload.includes('\n')
  )
}

/** One dispatch call: its KEYS and ARGV, and what its reply holds for each record. */
export interface DispatchCall {
  keys: string[]
  args: (string | number)[]
  /**
   * For each record, in order: the number of jobs of a 'p' run (its reply is one string), or 0
   * for an 'f' record (one job, two values): what {@link parseDispatchReply} reads the reply by.
   */
  records: number[]
}

/**
 * KEYS and ARGV of one dispatch call (see the header of dispatch.lua). A run of plain jobs
 * sharing a timeout, an attempt limit and a cost becomes one 'p' record of seven arguments, its
 * ids and its payloads joined into one argument each; any other job is an 'f' record of fourteen,
 * with its affinity, copies and tenant keys in KEYS. Every argument costs ioredis (a few strings
 * to write it, and more to read each value of the reply) and Redis some work, so a bulk submit
 * sends a few arguments per call rather than two or more per job.
 */
export function dispatchArgs(
  keys: PoolKeys,
  settings: DispatchCallSettings,
  items: readonly DispatchItem[],
): DispatchCall {
  const callKeys = [
    keys.load,
    keys.ready,
    keys.alive,
    keys.limits,
    keys.quota,
    sentKey(keys, settings.producerId),
  ]
  const args: (string | number)[] = [
    keys.base,
    settings.affinityTtlMs,
    settings.seed,
    settings.producerId,
    settings.resultTtlMs ?? '',
    settings.callNumber ?? 0,
    settings.receiptTtlMs ?? DEFAULT_RECEIPT_TTL_MS,
    items.length,
  ]
  const records: number[] = []
  let i = 0
  while (i < items.length) {
    const item = items[i] as DispatchItem
    if (!isPlain(item)) {
      records.push(0)
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
    const cost = item.cost ?? 1
    let end = i + 1
    for (; end < items.length; end++) {
      const next = items[end] as DispatchItem
      if (
        !isPlain(next) ||
        next.timeoutMs !== item.timeoutMs ||
        next.maxAttempts !== item.maxAttempts ||
        (next.cost ?? 1) !== cost
      )
        break
    }
    // Arrays of the run's exact length, joined once each: no array grows, no string is concatenated.
    const k = end - i
    const ids = new Array<string>(k)
    const payloads = new Array<string>(k)
    for (let j = 0; j < k; j++, i++) {
      const next = items[i] as DispatchItem
      ids[j] = next.jobId
      payloads[j] = next.payload
    }
    records.push(k)
    args.push('p', item.timeoutMs, item.maxAttempts, cost, k, ids.join(','), payloads.join('\n'))
  }
  return { keys: callKeys, args, records }
}

const SATURATED: DispatchOutcome = Object.freeze({ status: 'SATURATED' })
const NO_WORKERS: DispatchOutcome = Object.freeze({ status: 'NO_WORKERS' })
const RATE_LIMITED_PREFIX = 'RATE_LIMITED '

/**
 * Reads the script's reply to a call of `count` jobs in the given records (from
 * {@link dispatchArgs}): one outcome per job, in order.
 */
export function parseDispatchReply(
  reply: unknown,
  records: readonly number[],
  count: number,
): DispatchOutcome[] {
  let length = 0
  for (const k of records) length += k > 0 ? 1 : 2
  const values = replyArray(DISPATCH, reply, length)
  const outcomes: DispatchOutcome[] = new Array(count)
  let at = 0
  let job = 0
  for (const k of records) {
    if (k > 0) {
      job = parseRun(values[at++], k, outcomes, job)
      continue
    }
    const target = values[at++]
    const hit = values[at++]
    outcomes[job] = parseRecordOutcome(target, hit, job + 1)
    job++
  }
  return outcomes
}

/**
 * The outcomes of a 'p' run (one string, its outcomes joined by ','), written from `outcomes[job]`
 * on; returns the index after them. The jobs placed on one worker share one outcome object, so a
 * run costs an object per worker it reached, not per job.
 */
function parseRun(value: unknown, k: number, outcomes: DispatchOutcome[], job: number): number {
  if (typeof value !== 'string') throw badReply(DISPATCH, `${String(value)} for a run of ${k} jobs`)
  const recent: Extract<DispatchOutcome, { status: 'queued' }>[] = []
  let start = 0
  for (let j = 0; j < k; j++) {
    let end = value.indexOf(',', start)
    if (end < 0) end = value.length
    if (end === start || (j === k - 1) !== (end === value.length)) {
      throw badReply(DISPATCH, `a run of ${k} jobs as ${JSON.stringify(value.slice(0, 80))}`)
    }
    let outcome: DispatchOutcome | undefined
    for (let r = 0; r < recent.length; r++) {
      const q = recent[r] as Extract<DispatchOutcome, { status: 'queued' }>
      if (q.workerId.length === end - start && value.startsWith(q.workerId, start)) {
        outcome = q
        break
      }
    }
    if (outcome === undefined) {
      const target = value.slice(start, end)
      if (target === 'SATURATED') outcome = SATURATED
      else if (target === 'NO_WORKERS') outcome = NO_WORKERS
      else if (target.startsWith(RATE_LIMITED_PREFIX)) {
        const ms = Number(target.slice(RATE_LIMITED_PREFIX.length))
        if (!Number.isInteger(ms) || ms < 1) throw badReply(DISPATCH, `job ${job + 1} as ${target}`)
        outcome = { status: 'RATE_LIMITED', retryAfterMs: ms, isTenant: false }
      } else {
        const queued = { status: 'queued' as const, workerId: target, isAffinityHit: false }
        // A few workers a run reached: a run of 256 jobs over a handful of workers makes a handful.
        if (recent.length === 8) recent.shift()
        recent.push(queued)
        outcome = queued
      }
    }
    outcomes[job++] = outcome
    start = end + 1
  }
  return job
}

/** The outcome of job number `job` (from 1) of an 'f' record: its two values. */
function parseRecordOutcome(target: unknown, hit: unknown, job: number): DispatchOutcome {
  if (
    (target === 'RATE_LIMITED' || target === 'TENANT_LIMITED') &&
    typeof hit === 'number' &&
    Number.isInteger(hit) &&
    hit >= 1
  ) {
    return { status: 'RATE_LIMITED', retryAfterMs: hit, isTenant: target === 'TENANT_LIMITED' }
  }
  if (target === 'TENANT_FULL' && typeof hit === 'number' && Number.isInteger(hit) && hit >= 1) {
    return { status: 'TENANT_FULL', cap: hit }
  }
  if (target === 'BAD_LIMITS' && typeof hit === 'string') return { status: 'BAD_LIMITS', message: hit }
  if (typeof target !== 'string' || (hit !== 0 && hit !== 1)) {
    throw badReply(DISPATCH, `job ${job} as ${String(target)} ${String(hit)}`)
  }
  if (target === 'SATURATED') return SATURATED
  if (target === 'NO_WORKERS') return NO_WORKERS
  return { status: 'queued', workerId: target, isAffinityHit: hit === 1 }
}

/**
 * The reply of dispatch call number `callNumber` of producer `producerId`, read back from its
 * receipt: the reply the script gave (for {@link parseDispatchReply}) when the call ran, or
 * undefined when it did not (the slot is empty or holds another call's receipt). Only a call among
 * the producer's last RECEIPT_SLOTS can be told apart from one that did not run.
 * @throws HedgeyardError REDIS_* when the read fails, PROTOCOL_ERROR for a receipt that cannot be read.
 */
export async function readDispatchReceipt(
  conn: Connection,
  keys: PoolKeys,
  producerId: string,
  callNumber: number,
): Promise<unknown[] | undefined> {
  let text: string | null
  try {
    text = await conn.hget(sentKey(keys, producerId), String(callNumber % RECEIPT_SLOTS))
  } catch (err) {
    throw redisFailure(err, 'reading a dispatch receipt')
  }
  const head = `${callNumber} `
  if (text === null || !text.startsWith(head)) return undefined
  let reply: unknown
  try {
    reply = JSON.parse(text.slice(head.length))
  } catch {
    reply = undefined
  }
  if (!Array.isArray(reply))
    throw badReply(DISPATCH, `a receipt that is not a JSON array: ${text.slice(0, 80)}`)
  // Redis replies a Lua number as an integer, cut toward zero: the receipt's numbers are read alike.
  return reply.map((v: unknown) => (typeof v === 'number' ? Math.trunc(v) : v))
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
  return parseDispatchReply(
    await callScript(conn, DISPATCH, call.keys, call.args),
    call.records,
    items.length,
  )
}
