import { readWorkerMetrics, type WorkerMetrics } from '../producer/worker-metrics.js'
import { poolKeys } from '../protocol/keys.js'
import { checkName } from '../protocol/validate.js'
import type { RedisInput } from '../redis/connection.js'
import { withConnection } from './with-connection.js'

/** Where a pool is, for the operator tools. */
export interface PoolRef {
  redis: RedisInput
  pool: string
  /** @defaultValue 'sy' */
  prefix?: string
}

/** Validates a pool reference and returns its keys. */
export function refKeys(ref: PoolRef) {
  return poolKeys(checkName('prefix', ref.prefix ?? 'sy'), checkName('pool', ref.pool))
}

/**
 * Reads the metrics of every worker of a pool with a short-lived connection, for tools that do
 * not dispatch (the CLI's `inspect`).
 * @throws SwitchyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export function inspectPool(ref: PoolRef): Promise<WorkerMetrics[]> {
  const keys = refKeys(ref)
  return withConnection(ref.redis, 'inspect', (conn) => readWorkerMetrics(conn, keys))
}
