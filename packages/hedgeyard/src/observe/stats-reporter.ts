import type { Redis } from 'ioredis'
import { type PoolKeys, producerKey } from '../protocol/keys.js'

/** How often a dispatcher writes its counters to Redis, for `hedgeyard inspect`. */
export const STATS_REPORT_MS = 5_000
/** A report older than this is of a producer that has gone. */
const STATS_TTL_MS = 6 * STATS_REPORT_MS

/**
 * Writes a producer's counters to `p:<producerId>` (a HASH that expires) and lists it in
 * `producers`, off the hot path: one pipeline every few seconds.
 */
export async function reportStats(
  conn: Redis,
  keys: PoolKeys,
  producerId: string,
  stats: object,
): Promise<void> {
  const now = Date.now()
  const key = producerKey(keys, producerId)
  const fields = Object.entries(stats).flatMap(([k, v]) => [k, String(v)])
  await conn
    .pipeline()
    .hset(key, ...fields, 'reportedAt', String(now))
    .pexpire(key, STATS_TTL_MS)
    .zadd(keys.producers, now, producerId)
    .zremrangebyscore(keys.producers, '-inf', now - STATS_TTL_MS)
    .pexpire(keys.producers, STATS_TTL_MS)
    .exec()
}

/** The counters of every producer that reported recently, by producer id. */
export async function readProducerStats(
  conn: Redis,
  keys: PoolKeys,
): Promise<Record<string, Record<string, string>>> {
  const ids = await conn.zrangebyscore(keys.producers, Date.now() - STATS_TTL_MS, '+inf')
  const out: Record<string, Record<string, string>> = {}
  if (ids.length === 0) return out
  const pipeline = conn.pipeline()
  for (const id of ids) pipeline.hgetall(producerKey(keys, id))
  const replies = (await pipeline.exec()) ?? []
  ids.forEach((id, i) => {
    const fields = replies[i]?.[1] as Record<string, string> | undefined
    if (fields !== undefined && Object.keys(fields).length > 0) out[id] = fields
  })
  return out
}
