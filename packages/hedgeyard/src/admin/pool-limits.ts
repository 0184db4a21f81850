import { invalidArgument } from '../protocol/errors.js'
import { checkInt, checkKnownOptions, describe } from '../protocol/validate.js'
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

/** The quotas of a pool, enforced by every dispatch of every producer on every host. */
export interface PoolLimits {
  /** Requests (copies dispatched: hedges and retries count) per period. */
  rate?: Limiter
  /** A cost budget: each submit takes its `cost` (1 by default) from it. */
  cost?: Limiter
}

const FIELDS = ['rate', 'cost'] as const

/**
 * Sets a pool's quotas in Redis (`hy:{P}:limits`): every producer of the pool obeys them from its
 * next dispatch, without being configured. A limiter left out is removed.
 * @throws HedgeyardError INVALID_ARGUMENT naming the field, REDIS_* when Redis fails.
 */
export async function setPoolLimits(ref: PoolRef, limits: PoolLimits): Promise<void> {
  const keys = refKeys(ref)
  if (typeof limits !== 'object' || limits === null) {
    throw invalidArgument(`limits must be an object { rate?, cost? } (got ${describe(limits)})`)
  }
  checkKnownOptions('limits', limits, FIELDS)
  if (limits.rate === undefined && limits.cost === undefined) {
    throw invalidArgument('limits must set rate, cost or both (clearPoolLimits removes them)')
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
  await withConnection(ref.redis, 'limits', async (conn) => {
    await conn
      .multi()
      .del(keys.limits)
      .hset(keys.limits, ...fields)
      .exec()
  })
}

/**
 * Reads a pool's quotas; `{}` when it has none. A field that is not a number (written by someone
 * else) comes back as NaN, so that `hedgeyard limits show` shows what is wrong.
 * @throws HedgeyardError REDIS_* when Redis fails.
 */
export async function getPoolLimits(ref: PoolRef): Promise<PoolLimits> {
  const keys = refKeys(ref)
  const raw = await withConnection(ref.redis, 'limits', (conn) => conn.hgetall(keys.limits))
  const out: PoolLimits = {}
  for (const name of FIELDS) {
    if (raw[name] === undefined && raw[`${name}_period`] === undefined) continue
    out[name] = {
      limit: Number(raw[name]),
      periodMs: Number(raw[`${name}_period`]),
      burst: raw[`${name}_burst`] === undefined ? 1 : Number(raw[`${name}_burst`]),
    }
  }
  return out
}

/**
 * Removes a pool's quotas and their state; returns whether it had any.
 * @throws HedgeyardError REDIS_* when Redis fails.
 */
export async function clearPoolLimits(ref: PoolRef): Promise<boolean> {
  const keys = refKeys(ref)
  return withConnection(ref.redis, 'limits', async (conn) => (await conn.del(keys.limits, keys.quota)) > 0)
}
