import { decodeEnvelope, envelopeError } from '../protocol/codec.js'
import { copiesKey, outKey, type PoolKeys, resultKey } from '../protocol/keys.js'
import type { Connection } from '../redis/connection.js'

/** Where a job stands, as any process reads it from Redis. */
export type JobState =
  | { status: 'pending' }
  | { status: 'completed'; result: unknown }
  | { status: 'failed'; error: { code: string; message: string } }
  | { status: 'unknown' }

/**
 * Reads a job's state: its result when it has one, else pending while a copy of it is known (a
 * streamed or racing job's copies, or its output stream), else unknown. A plain job sent with
 * `submit` is known only once it has a result.
 */
export async function readJobState(conn: Connection, keys: PoolKeys, jobId: string): Promise<JobState> {
  const [text, copies, out] = await Promise.all([
    conn.get(resultKey(keys, jobId)),
    conn.exists(copiesKey(keys, jobId)),
    conn.exists(outKey(keys, jobId)),
  ])
  if (text !== null) {
    const env = decodeEnvelope(text)
    if (env.ok) return { status: 'completed', result: env.value }
    const err = envelopeError(jobId, env)
    return { status: 'failed', error: { code: err.code, message: err.message } }
  }
  return copies + out > 0 ? { status: 'pending' } : { status: 'unknown' }
}
