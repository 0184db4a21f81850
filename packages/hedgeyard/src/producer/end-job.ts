import { decodeEntry } from '../protocol/codec.js'
import { type PoolKeys, queueKey } from '../protocol/keys.js'
import { type CancelReply, cancelJobKeys } from '../protocol/scripts/cancel.js'
import type { Connection } from '../redis/connection.js'

/** What a cancel found: the job stopped, already over, or not known to the pool. */
export type CancelOutcome = 'cancelled' | 'finished' | 'unknown'

/** How long the CANCELLED result of a cancelled job is kept, unless told otherwise. */
export const CANCEL_RESULT_TTL_MS = 60_000

/** Entries one worker's stream is read for at most, when looking for a plain job's copy. */
const SCAN_COUNT = 10_000

/** How a job ends when it is stopped: its code and message. */
export interface JobEnd {
  code: string
  message: string
  resultTtlMs: number
  /** A copy to keep (a hedged stream's winner): only the others are stopped, and the job goes on. */
  keepEntryId?: string
}

/** The outcome a caller sees. */
export function outcomeOf(reply: CancelReply): CancelOutcome {
  return reply.status === 'CANCELLED' ? 'cancelled' : reply.status === 'FINISHED' ? 'finished' : 'unknown'
}

/**
 * Ends a job with a failure and stops its copies. A racing or streamed job's copies are in its
 * copies hash; a plain job has none, so its copy is looked for in the streams of `workers` (every
 * worker of the pool when not given) and named to the script, which checks it again.
 */
export async function endJob(
  conn: Connection,
  keys: PoolKeys,
  jobId: string,
  end: JobEnd,
  workers?: readonly string[],
): Promise<CancelReply> {
  const first = await cancelJobKeys(conn, keys, { jobId, ...end })
  if (first.status !== 'UNKNOWN') return first
  const copies = await findCopies(conn, keys, jobId, workers)
  if (copies.length === 0) return first
  return cancelJobKeys(conn, keys, { jobId, ...end, copies })
}

/** The entries of `jobId` in the streams of `workers` (all of the pool's when not given). */
async function findCopies(
  conn: Connection,
  keys: PoolKeys,
  jobId: string,
  workers: readonly string[] | undefined,
): Promise<{ workerId: string; entryId: string }[]> {
  const ids = workers ?? (await conn.zrange(keys.load, '0', '-1'))
  if (ids.length === 0) return []
  const pipeline = conn.pipeline()
  for (const w of ids) pipeline.xrange(queueKey(keys, w), '-', '+', 'COUNT', SCAN_COUNT)
  const replies = (await pipeline.exec()) ?? []
  const found: { workerId: string; entryId: string }[] = []
  replies.forEach(([err, entries], i) => {
    // A key of another type (or a failed read) holds no copy of this job.
    if (err !== null || !Array.isArray(entries)) return
    for (const [entryId, fields] of entries as [string, string[] | null][]) {
      if (fields === null) continue
      const entry = decodeEntry(entryId, fields)
      if ('jobId' in entry && entry.jobId === jobId) found.push({ workerId: ids[i] as string, entryId })
    }
  })
  return found
}
