import { readWorkerMetrics, type WorkerMetrics } from './producer/worker-metrics.js'
import { poolKeys } from './protocol/keys.js'
import { checkName } from './protocol/validate.js'
import { connectReady, createConnection, type RedisInput, redisFailure } from './redis/connection.js'

/**
 * Reads the metrics of every worker of a pool with a short-lived connection, for tools that do
 * not dispatch (the CLI's `inspect`).
 * @throws SwitchyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function inspectPool(options: {
  redis: RedisInput
  pool: string
  prefix?: string
}): Promise<WorkerMetrics[]> {
  const keys = poolKeys(checkName('prefix', options.prefix ?? 'sy'), checkName('pool', options.pool))
  const conn = createConnection(options.redis, 'command', 'sy:inspect')
  try {
    await connectReady(conn, 5_000)
    return await readWorkerMetrics(conn, keys)
  } catch (err) {
    throw redisFailure(err, 'inspect')
  } finally {
    conn.disconnect()
  }
}
