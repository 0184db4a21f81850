import { checkInt, checkName } from '../protocol/validate.js'

/**
 * The names of a logical pool's cells. Cell `i` of pool `chat` is the ordinary pool `chat.i`: its
 * keys are `hy:{chat.i}:...`, so each cell sits on a hash slot of its own and a Redis Cluster
 * spreads the cells over its primaries. Nothing in Redis says that `chat.2` is a cell: the name is
 * the whole contract, so a pool of that name made by hand would be cell 2 of `chat`.
 */

/** The most cells a logical pool may have. */
export const MAX_CELLS = 1024

/**
 * The `cells` option: a whole number from 1 to {@link MAX_CELLS}.
 * @throws HedgeyardError INVALID_ARGUMENT naming `field`.
 */
export function checkCells(value: unknown, field = 'cells'): number {
  return checkInt(field, value, 1, MAX_CELLS)
}

/** The pool name of cell `index` of `pool`. */
export function cellPool(pool: string, index: number): string {
  return `${pool}.${index}`
}

/**
 * The pool names of the `cells` cells of `pool`, checked as pool names (the longest one must still
 * fit in 100 characters).
 * @throws HedgeyardError INVALID_ARGUMENT for a bad pool name or count.
 */
export function cellPools(pool: string, cells: number): string[] {
  checkName('pool', pool)
  checkCells(cells)
  checkName(`pool (as its last cell's name, with ${cells} cells)`, cellPool(pool, cells - 1))
  return Array.from({ length: cells }, (_, i) => cellPool(pool, i))
}

/**
 * The cell a session belongs to: FNV-1a (32 bits) of its UTF-8 bytes, modulo `cells`. The same in
 * every process and on every host, so every producer sends a session to the same cell, where the
 * cell's own affinity keeps it on one worker.
 */
export function sessionCell(session: string, cells: number): number {
  let hash = 0x811c9dc5
  for (const byte of Buffer.from(session, 'utf8')) {
    hash ^= byte
    hash = Math.imul(hash, 0x01000193) >>> 0
  }
  return hash % cells
}
