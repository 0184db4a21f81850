import { withConnection } from '../admin/with-connection.js'
import { startWorkers, type WorkerGroup, type WorkerOptions } from '../consumer/start-workers.js'
import { checkWorkerOptions } from '../consumer/worker-options.js'
import { notify } from '../observe/metrics-sink.js'
import { type PoolKeys, poolKeys } from '../protocol/keys.js'
import type { Connection } from '../redis/connection.js'
import { cellPools, checkCells } from './cell-pools.js'

/** Options of {@link startCellWorkers}: startWorkers's, and how many cells the pool has. */
export interface CellWorkerOptions<Req, Res> extends WorkerOptions<Req, Res> {
  /** Cells of the pool, 1 to 1024: cell `i` of pool `chat` is the pool `chat.i`. */
  cells: number
}

/** The workers of this process, in the one cell they joined. */
export interface CellWorkerGroup extends WorkerGroup {
  /** The index of the cell they joined. */
  readonly cell: number
  /** That cell's pool name. */
  readonly cellPool: string
}

/**
 * Starts this process's workers in the cell of the pool that has the fewest live workers (ties
 * broken at random, so processes starting at the same moment tend to part). They stay in that
 * cell until they stop. Two processes that read the counts at the same moment may join the same
 * cell: the spread is even for starts one after another, and close to it otherwise.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad option, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function startCellWorkers<Req = unknown, Res = unknown>(
  options: CellWorkerOptions<Req, Res>,
): Promise<CellWorkerGroup> {
  const { cells, ...rest } = options
  const pools = cellPools(rest.pool, checkCells(cells))
  // Every other option is checked before anything is read.
  checkWorkerOptions({ ...rest, pool: pools[0] as string })
  const prefix = rest.prefix ?? 'hy'
  const keys = pools.map((pool) => poolKeys(prefix, pool))
  const counts = await withConnection(rest.redis, 'cells', (conn) => liveWorkers(conn, keys))
  const cell = fewest(counts)
  const cellPool = pools[cell] as string
  notify(rest.metrics, 'poolCells', rest.pool, pools)
  const group = await startWorkers<Req, Res>({ ...rest, pool: cellPool })
  return { workerIds: group.workerIds, close: () => group.close(), done: group.done, cell, cellPool }
}

/** The live workers of each cell: those whose lease ends after Redis's clock now. */
export async function liveWorkers(conn: Connection, keys: readonly PoolKeys[]): Promise<number[]> {
  const [seconds, micros] = await conn.time()
  const nowMs = Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
  return Promise.all(keys.map((k) => conn.zcount(k.alive, `(${nowMs}`, '+inf')))
}

/** The index of a smallest count, drawn at random among equals. */
function fewest(counts: readonly number[]): number {
  const min = Math.min(...counts)
  const at = counts.flatMap((c, i) => (c === min ? [i] : []))
  return at[Math.floor(Math.random() * at.length)] as number
}
