import type { Connection } from '../../redis/connection.js'
import { outKey, type PoolKeys, queueKey, resultKey } from '../keys.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** chunk.lua: appends streamed jobs' chunks to their output streams (see its header). */
export const CHUNK: ScriptSpec = { name: 'chunk', fixedKeys: 0, hasKeysPerItem: true }

/** Chunks a streamed job emitted, in order, written as one entry of its output stream. */
export interface ChunkItem {
  workerId: string
  entryId: string
  jobId: string
  /** The seq of the first of them: 1 for the job's first chunk, then 2, 3, ... */
  seq: number
  /** The chunks, each as JSON. */
  data: readonly string[]
}

/** What became of a chunk: appended, or why not (see chunk.lua). */
export type ChunkStatus = 'OK' | 'LATE' | 'ENDED' | 'LOST'
const STATUSES: readonly ChunkStatus[] = ['OK', 'LATE', 'ENDED', 'LOST']

/**
 * Appends `items` to their jobs' output streams, in one call, each item as one entry (one chunk:
 * field `d`; several: `b`, their JSON array, and `n`); one status per item, in order.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function appendChunks(
  conn: Connection,
  keys: PoolKeys,
  resultTtlMs: number,
  items: readonly ChunkItem[],
): Promise<ChunkStatus[]> {
  const callKeys: string[] = []
  const args: (string | number)[] = [keys.base, resultTtlMs]
  for (const item of items) {
    callKeys.push(queueKey(keys, item.workerId), outKey(keys, item.jobId), resultKey(keys, item.jobId))
    const data = item.data.length === 1 ? (item.data[0] as string) : `[${item.data.join(',')}]`
    args.push(item.workerId, item.entryId, item.seq, item.data.length, data)
  }
  const reply = replyArray(CHUNK, await callScript(conn, CHUNK, callKeys, args), items.length)
  return reply.map((v, i) => {
    if (!STATUSES.includes(v as ChunkStatus)) throw badReply(CHUNK, `${String(v)} for chunk ${i + 1}`)
    return v as ChunkStatus
  })
}
