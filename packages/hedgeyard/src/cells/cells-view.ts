import { type PoolRef, toProducerStats } from '../admin/inspect-pool.js'
import { parseLimits } from '../admin/pool-limits.js'
import type { PoolSnapshot, PoolView } from '../admin/pool-view.js'
import { readProducerStats } from '../observe/stats-reporter.js'
import { readWorkerMetrics } from '../observe/worker-metrics.js'
import { poolKeys } from '../protocol/keys.js'
import { checkName } from '../protocol/validate.js'
import { type Connection, connectReady, createConnection, redisFailure } from '../redis/connection.js'
import { cellPools, checkCells } from './cell-pools.js'

/**
 * Opens a view of every cell of a pool as one pool (for `top --cells`), over one connection. Its
 * snapshot is named `<pool> (<n> cells)`; each worker and producer id is prefixed with its cell
 * (`2/vm-1234-1`), the dead letters are summed, and the quotas shown are those every cell has
 * alike (`{}` when they differ: each cell has its own).
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name or count, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function openCellsView(ref: PoolRef & { cells: number }, name = 'view'): Promise<PoolView> {
  const prefix = checkName('prefix', ref.prefix ?? 'hy')
  const pools = cellPools(ref.pool, checkCells(ref.cells))
  const keys = pools.map((pool) => poolKeys(prefix, pool))
  const conn: Connection = createConnection(ref.redis, 'command', `hy:admin:${name}`)
  try {
    await connectReady(conn, 5_000)
  } catch (err) {
    conn.disconnect()
    throw redisFailure(err, name)
  }
  return {
    async snapshot(): Promise<PoolSnapshot> {
      try {
        const [cells, time] = await Promise.all([
          Promise.all(
            keys.map((k) =>
              Promise.all([
                readWorkerMetrics(conn, k),
                readProducerStats(conn, k),
                conn.xlen(k.dead),
                conn.hgetall(k.limits),
              ]),
            ),
          ),
          conn.time(),
        ])
        const limits = cells.map(([, , , l]) => JSON.stringify(l))
        return {
          pool: `${ref.pool} (${pools.length} cells)`,
          at: Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000),
          workers: cells.flatMap(([workers], i) =>
            workers.map((w) => ({ ...w, workerId: `${i}/${w.workerId}` })),
          ),
          producers: cells.flatMap(([, producers], i) =>
            toProducerStats(producers).map((p) => ({ ...p, producerId: `${i}/${p.producerId}` })),
          ),
          deadLetters: cells.reduce((sum, [, , dead]) => sum + dead, 0),
          limits: limits.every((l) => l === limits[0]) ? parseLimits(cells[0]?.[3] ?? {}) : {},
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
