import type { JobEntry } from '../protocol/codec.js'
import { HedgeyardError } from '../protocol/errors.js'
import type { ChunkWriter } from './chunk-writer.js'
import type { LazyAbort } from './lazy-abort.js'
import { encodeResult, failure, type JobResult, remoteError } from './run-job.js'

/** The limits and the writer a streamed job runs with. */
export interface StreamLimits {
  writer: ChunkWriter
  /** Most chunks one job may emit; past it the job ends with STREAM_OVERFLOW. */
  maxChunks: number
  /** Largest chunk, as JSON in UTF-8; a larger one ends the job with STREAM_OVERFLOW. */
  maxChunkBytes: number
  maxResultBytes: number
}

/** A result that frees the slot and leaves no result: the job is someone else's now, or over. */
const SKIP: JobResult = { outcome: 'skip', envelope: '' }

/**
 * Runs a handler's async iterator: each value it yields becomes the job's next chunk, appended to
 * the job's output stream before the next value is asked for (so a handler that emits faster than
 * Redis takes chunks waits, and a job has one chunk in flight); what it returns is the result.
 * When a chunk is refused (another copy began the stream, the job was cancelled or ended, or the
 * entry was taken away) the signal is aborted, the iterator closed, and the job completes unrun.
 * A job sent with `submit` (not streamed) gets the return value only: its chunks are dropped.
 */
export async function runStream(
  it: AsyncIterator<unknown, unknown>,
  entry: JobEntry,
  workerId: string,
  ctrl: LazyAbort,
  limits: StreamLimits,
): Promise<JobResult> {
  let seq = 0
  const close = (reason: Error) => {
    ctrl.abort(reason)
    // Closing runs the generator's finally blocks; whatever they throw is not the caller's concern.
    Promise.resolve()
      .then(() => it.return?.(undefined))
      .catch(() => {})
  }
  try {
    for (;;) {
      const step = await it.next()
      if (step.done) return encodeResult(step.value, workerId, entry.copy, limits.maxResultBytes)
      // A job sent with `submit` wants the result only: its chunks go nowhere.
      if (entry.race !== 's') continue
      seq++
      const overflow = checkChunk(step.value, seq, limits)
      if (typeof overflow !== 'string') {
        close(overflow)
        return failure(workerId, entry.copy, {
          code: 'STREAM_OVERFLOW',
          name: 'HedgeyardError',
          message: overflow.message,
        })
      }
      const status = await limits.writer.write({
        workerId,
        entryId: entry.entryId,
        jobId: entry.jobId,
        seq,
        data: overflow,
      })
      if (status !== 'OK') {
        close(new HedgeyardError('CANCELLED', refusedMessage(status), { jobId: entry.jobId }))
        return SKIP
      }
    }
  } catch (err) {
    return failure(workerId, entry.copy, remoteError(err))
  }
}

/** The chunk as JSON, or the STREAM_OVERFLOW error that ends the job. */
function checkChunk(value: unknown, seq: number, limits: StreamLimits): string | HedgeyardError {
  if (seq > limits.maxChunks) {
    return new HedgeyardError(
      'STREAM_OVERFLOW',
      `the job emitted more than maxChunks (${limits.maxChunks}) chunks`,
    )
  }
  let data: string | undefined
  try {
    data = JSON.stringify(value)
  } catch (err) {
    throw new TypeError(`chunk ${seq} is not JSON-serialisable: ${(err as Error).message}`)
  }
  if (data === undefined) throw new TypeError(`chunk ${seq} is not JSON-serialisable (got ${typeof value})`)
  const max = limits.maxChunkBytes
  if (data.length > max / 3 && Buffer.byteLength(data) > max) {
    return new HedgeyardError(
      'STREAM_OVERFLOW',
      `chunk ${seq} takes ${Buffer.byteLength(data)} bytes as JSON; maxChunkBytes is ${max}`,
    )
  }
  return data
}

function refusedMessage(status: string): string {
  if (status === 'LATE') return 'another copy of this job began its stream first'
  if (status === 'ENDED') return 'the job has ended (cancelled, or its caller gave up)'
  return 'the job is no longer held by this worker'
}
