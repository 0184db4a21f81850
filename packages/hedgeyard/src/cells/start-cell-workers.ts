import { randomUUID } from 'node:crypto'
import { withConnection } from '../admin/with-connection.js'
import { startWorkers, type WorkerGroup, type WorkerOptions } from '../consumer/start-workers.js'
import { checkWorkerOptions } from '../consumer/worker-options.js'
import { notify } from '../observe/metrics-sink.js'
import { cellJoinKey, type PoolKeys, poolKeys } from '../protocol/keys.js'
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
 * broken at random). They stay in that cell until they stop. Processes that start at the same
 * moment join one at a time: each holds the pool's join key (`hy:{chat}:cells:join`) from reading
 * the counts until its workers are registered, so the next one counts them (see {@link joinInTurn}).
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
  notify(rest.metrics, 'poolCells', rest.pool, pools)
  return withConnection(rest.redis, 'cells', (conn) =>
    joinInTurn(conn, cellJoinKey(prefix, rest.pool), async () => {
      const cell = fewest(await liveWorkers(conn, keys))
      const cellPool = pools[cell] as string
      const group = await startWorkers<Req, Res>({ ...rest, pool: cellPool })
      return { workerIds: group.workerIds, close: () => group.close(), done: group.done, cell, cellPool }
    }),
  )
}

/** How long a joining process may hold the join key: past it, the key expires by itself. */
const JOIN_HOLD_MS = 5_000

/**
 * Runs `join` while holding `key` (SET NX PX), waiting its turn behind processes that hold it. A
 * process that dies holding it delays the others by JOIN_HOLD_MS at most; one whose join takes
 * longer than that may be overtaken, and two processes may then join the same cell (the spread is
 * then uneven, nothing else). The key is deleted afterwards only if it still holds this process's
 * token (GET then DEL: a key taken over in between was past its time anyway).
 */
async function joinInTurn<T>(conn: Connection, key: string, join: () => Promise<T>): Promise<T> {
  const token = randomUUID()
  while ((await conn.set(key, token, 'PX', JOIN_HOLD_MS, 'NX')) !== 'OK') {
    await new Promise((r) => setTimeout(r, 10 + Math.random() * 40))
  }
  try {
    return await join()
  } finally {
    if ((await conn.get(key).catch(() => null)) === token) await conn.del(key).catch(() => 0)
  }
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
