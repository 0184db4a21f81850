import { invalidArgument } from '../protocol/errors.js'
import { classLimitsKey } from '../protocol/keys.js'
import { checkInt, checkKnownOptions, checkLimitClass, describe } from '../protocol/validate.js'
import { type PoolRef, refKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/** One limiter of a pool: `limit` units per `periodMs`, of which `burst` may go at once. */
export interface Limiter {
  /** Units per period: requests for `rate`, cost units (tokens, say) for `cost`. */
  limit: number
  /** The period, in ms: 1000 for per second, 60000 for per minute. */
  periodMs: number
  /** Units that may go at once after a quiet spell; 1 spaces them evenly. @defaultValue 1 */
  burst?: number
}

/**
 * The quotas of a pool, enforced by every dispatch of every producer on every host; or, for a
 * class of tenants, the limits each tenant of the class gets on its own.
 */
export interface PoolLimits {
  /** Requests (copies dispatched: hedges and retries count) per period. */
  rate?: Limiter
  /** A cost budget: each submit takes its `cost` (1 by default) from it. */
  cost?: Limiter
  /** For a class of tenants only: the most jobs one tenant may have queued or running at once. */
  concurrency?: number
}

/** Which limits an operator function works on. */
export interface PoolLimitsOptions {
  /**
   * A class of tenants (the submit option `limitClass` of their requests): its limits apply to each
   * tenant (`limitKey`) of the class on its own, on top of the pool's. Left out: the pool's own quotas.
   */
  limitClass?: string
}

const FIELDS = ['rate', 'cost'] as const

/** The key of the limits `options` name, checked. */
function limitsKeyOf(ref: PoolRef, options: PoolLimitsOptions): { key: string; limitClass?: string } {
  const keys = refKeys(ref)
  if (typeof options !== 'object' || options === null) {
    throw invalidArgument(`options must be an object { limitClass? } (got ${describe(options)})`)
  }
  checkKnownOptions('limits options', options, ['limitClass'])
  if (options.limitClass === undefined) return { key: keys.limits }
  const limitClass = checkLimitClass('limitClass', options.limitClass)
  return { key: classLimitsKey(keys, limitClass), limitClass }
}

/**
 * Sets a pool's quotas in Redis (`hy:{P}:limits`), or with `options.limitClass` the limits of each
 * tenant of that class (`hy:{P}:limits:<class>`): every producer of the pool obeys them from its
 * next dispatch, without being configured. A limiter left out is removed.
 * @throws HedgeyardError INVALID_ARGUMENT naming the field, REDIS_* when Redis fails.
 */
export async function setPoolLimits(
  ref: PoolRef,
  limits: PoolLimits,
  options: PoolLimitsOptions = {},
): Promise<void> {
  const { key, limitClass } = limitsKeyOf(ref, options)
  if (typeof limits !== 'object' || limits === null) {
    throw invalidArgument(`limits must be an object { rate?, cost?, concurrency? } (got ${describe(limits)})`)
  }
  checkKnownOptions('limits', limits, [...FIELDS, 'concurrency'])
  if (limits.concurrency !== undefined && limitClass === undefined) {
    throw invalidArgument(
      "limits.concurrency is a cap per tenant: give options.limitClass (a pool's own concurrency is its workers' capacity)",
    )
  }
  if (limits.rate === undefined && limits.cost === undefined && limits.concurrency === undefined) {
    throw invalidArgument(
      `limits must set rate, cost${limitClass === undefined ? '' : ', concurrency'} or more (clearPoolLimits removes them)`,
    )
  }
  const fields: string[] = []
  for (const name of FIELDS) {
    const l = limits[name]
    if (l === undefined) continue
    if (typeof l !== 'object' || l === null) {
      throw invalidArgument(
        `limits.${name} must be an object { limit, periodMs, burst? } (got ${describe(l)})`,
      )
    }
    checkKnownOptions(`limits.${name}`, l, ['limit', 'periodMs', 'burst'])
    fields.push(
      name,
      String(checkInt(`limits.${name}.limit`, l.limit, 1, 1e12)),
      `${name}_period`,
      String(checkInt(`limits.${name}.periodMs`, l.periodMs, 1, 86_400_000)),
      `${name}_burst`,
      String(l.burst === undefined ? 1 : checkInt(`limits.${name}.burst`, l.burst, 1, 1e12)),
    )
  }
  if (limits.concurrency !== undefined) {
    fields.push('concurrency', String(checkInt('limits.concurrency', limits.concurrency, 1, 1e9)))
  }
  await withConnection(ref.redis, 'limits', async (conn) => {
    await conn
      .multi()
      .del(key)
      .hset(key, ...fields)
      .exec()
  })
}

/**
 * Reads a pool's quotas, or with `options.limitClass` the limits of each tenant of that class;
 * `{}` when there are none. A field that is not a number (written by someone else) comes back as
 * NaN, so that `hedgeyard limits show` shows what is wrong.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad class name, REDIS_* when Redis fails.
 */
export async function getPoolLimits(ref: PoolRef, options: PoolLimitsOptions = {}): Promise<PoolLimits> {
  const { key } = limitsKeyOf(ref, options)
  return parseLimits(await withConnection(ref.redis, 'limits', (conn) => conn.hgetall(key)))
}

/** Limits from the fields of a limits HASH; a field that is not a number comes back as NaN. */
export function parseLimits(raw: Record<string, string>): PoolLimits {
  const out: PoolLimits = {}
  for (const name of FIELDS) {
    if (raw[name] === undefined && raw[`${name}_period`] === undefined) continue
    out[name] = {
      limit: Number(raw[name]),
      periodMs: Number(raw[`${name}_period`]),
      burst: raw[`${name}_burst`] === undefined ? 1 : Number(raw[`${name}_burst`]),
    }
  }
  if (raw.concurrency !== undefined) out.concurrency = Number(raw.concurrency)
  return out
}

/**
 * Removes a pool's quotas and their state, or with `options.limitClass` the limits of that class
 * (each tenant's state then expires on its own); returns whether there were any.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad class name, REDIS_* when Redis fails.
 */
export async function clearPoolLimits(ref: PoolRef, options: PoolLimitsOptions = {}): Promise<boolean> {
  const keys = refKeys(ref)
  const { key, limitClass } = limitsKeyOf(ref, options)
  const removed = limitClass === undefined ? [keys.limits, keys.quota] : [key]
  return withConnection(ref.redis, 'limits', async (conn) => (await conn.del(...removed)) > 0)
}
