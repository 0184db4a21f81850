import { type PoolRef, type ProducerStats, toProducerStats } from '../admin/inspect-pool.js'
import { withConnection } from '../admin/with-connection.js'
import { readProducerStats } from '../observe/stats-reporter.js'
import { readWorkerMetrics, type WorkerMetrics } from '../observe/worker-metrics.js'
import { poolKeys } from '../protocol/keys.js'
import { checkName } from '../protocol/validate.js'
import { cellPools, checkCells } from './cell-pools.js'

/** One cell of a pool, as {@link inspectCells} reads it. */
export interface CellView {
  /** The cell's index. */
  cell: number
  /** The cell's pool name (`chat.3`): every tool that takes a pool takes it. */
  pool: string
  workers: WorkerMetrics[]
  producers: ProducerStats[]
}

/**
 * Reads the workers and producers of each cell of a pool with one short-lived connection, for
 * the CLI's `inspect --cells`.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name or count, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function inspectCells(ref: PoolRef & { cells: number }): Promise<CellView[]> {
  const prefix = checkName('prefix', ref.prefix ?? 'hy')
  const pools = cellPools(ref.pool, checkCells(ref.cells))
  return withConnection(ref.redis, 'inspect', (conn) =>
    Promise.all(
      pools.map(async (pool, cell) => {
        const keys = poolKeys(prefix, pool)
        const [workers, producers] = await Promise.all([
          readWorkerMetrics(conn, keys),
          readProducerStats(conn, keys),
        ])
        return { cell, pool, workers, producers: toProducerStats(producers) }
      }),
    ),
  )
}
