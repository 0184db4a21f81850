import type { DispatcherStats } from '../producer/dispatcher.js'
import { readProducerStats } from '../producer/stats-reporter.js'
import { readWorkerMetrics, type WorkerMetrics } from '../producer/worker-metrics.js'
import { poolKeys } from '../protocol/keys.js'
import { checkName } from '../protocol/validate.js'
import type { RedisInput } from '../redis/connection.js'
import { withConnection } from './with-connection.js'

/** Where a pool is, for the operator tools. */
export interface PoolRef {
  redis: RedisInput
  pool: string
  /** @defaultValue 'hy' */
  prefix?: string
}

/** Validates a pool reference and returns its keys. */
export function refKeys(ref: PoolRef) {
  return poolKeys(checkName('prefix', ref.prefix ?? 'hy'), checkName('pool', ref.pool))
}

/**
 * Reads the metrics of every worker of a pool with a short-lived connection, for tools that do
 * not dispatch (the CLI's `inspect`).
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function inspectPool(ref: PoolRef): Promise<WorkerMetrics[]> {
  const keys = refKeys(ref)
  return withConnection(ref.redis, 'inspect', (conn) => readWorkerMetrics(conn, keys))
}

/** A producer's counters as it last reported them (every few seconds, and when it closes). */
export interface ProducerStats extends DispatcherStats {
  producerId: string
  reportedAt: number
}

/** The counters a dispatcher reports, by name: one list for reading them back. */
const COUNTERS: readonly (keyof DispatcherStats)[] = [
  'submitted',
  'succeeded',
  'failed',
  'affinityHits',
  'affinityMisses',
  'saturated',
  'hedgesSent',
  'hedgesWon',
  'hedgesCancelled',
  'hedgesDenied',
  'retriesSent',
  'autoDelayMs',
]

/**
 * Reads the counters of the producers (dispatchers) of a pool that reported recently.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function inspectProducers(ref: PoolRef): Promise<ProducerStats[]> {
  const keys = refKeys(ref)
  return withConnection(ref.redis, 'inspect', async (conn) => {
    const all = await readProducerStats(conn, keys)
    return Object.entries(all).map(([producerId, fields]) => {
      const stats = { producerId, reportedAt: Number(fields.reportedAt ?? 0) } as ProducerStats
      for (const name of COUNTERS) stats[name] = Number(fields[name] ?? 0)
      return stats
    })
  })
}
