import { readProducerStats } from '../observe/stats-reporter.js'
import { readWorkerMetrics, type WorkerMetrics } from '../observe/worker-metrics.js'
import { type Connection, connectReady, createConnection, redisFailure } from '../redis/connection.js'
import { type PoolRef, type ProducerStats, refKeys, toProducerStats } from './inspect-pool.js'
import { type PoolLimits, parseLimits } from './pool-limits.js'

/** Everything the operator views show of a pool, read at one moment. */
export interface PoolSnapshot {
  pool: string
  /** Redis's clock when it was read, in ms since the epoch. */
  at: number
  /** Every registered worker, ordered by id (alive or not). */
  workers: WorkerMetrics[]
  /** The producers that reported in the last 30 s, with their counters and latencies. */
  producers: ProducerStats[]
  /** Entries in the dead-letter stream. */
  deadLetters: number
  /** The pool's quotas (`{}` when it has none). */
  limits: PoolLimits
}

/** A pool read again and again over one connection (for `top`, the exporter and the dashboard). */
export interface PoolView {
  /** Reads the pool now. @throws HedgeyardError REDIS_* when Redis fails. */
  snapshot(): Promise<PoolSnapshot>
  close(): void
}

/**
 * Opens a connection for repeated reads of a pool. A snapshot costs a few round trips plus one
 * pipeline of two commands per worker, so reading a pool of 1,000 workers every second is cheap.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function openPoolView(ref: PoolRef, name = 'view'): Promise<PoolView> {
  const keys = refKeys(ref)
  const conn: Connection = createConnection(ref.redis, 'command', `hy:admin:${name}`)
  try {
    await connectReady(conn, 5_000)
  } catch (err) {
    conn.disconnect()
    throw redisFailure(err, name)
  }
  return {
    async snapshot() {
      try {
        const [workers, producers, deadLetters, limits, time] = await Promise.all([
          readWorkerMetrics(conn, keys),
          readProducerStats(conn, keys),
          conn.xlen(keys.dead),
          conn.hgetall(keys.limits),
          conn.time(),
        ])
        return {
          pool: ref.pool,
          at: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000),
          workers,
          producers: toProducerStats(producers),
          deadLetters,
          limits: parseLimits(limits),
        }
      } catch (err) {
        throw redisFailure(err, name)
      }
    },
    close() {
      conn.disconnect()
    },
  }
}
