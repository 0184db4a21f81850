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

/** Most chunks of one job in one write: a handler faster than Redis waits past it. */
export const MAX_CHUNKS_PER_WRITE = 256
/** Most bytes of chunks of one job in one write. */
const MAX_BYTES_PER_WRITE = 262_144

/** The promise of the event loop's next turn, shared by every job that waits for it in this one. */
let turn: Promise<void> | undefined

/**
 * Settles in the event loop's next check phase (after I/O): one `setImmediate` and one promise for
 * all the streamed jobs that wait for it, rather than one of each per job and chunk.
 */
function nextTurn(): Promise<void> {
  turn ??= new Promise<void>((resolve) =>
    setImmediate(() => {
      turn = undefined
      resolve()
    }),
  )
  return turn
}

/**
 * Runs a handler's async iterator: each value it yields becomes the job's next chunk, and what it
 * returns is the result. One write of a job's chunks is in flight at a time; the chunks the handler
 * yields meanwhile go together in the next one (up to MAX_CHUNKS_PER_WRITE, past which the handler
 * waits), so a handler that yields faster than Redis takes them costs one script call per batch,
 * not per chunk, while a handler that yields at a model's pace sends each chunk at once. The result
 * is returned only once every chunk is stored, so the job's end comes after its last chunk. When a
 * write is refused (another copy began the stream, the job was cancelled or ended, or the entry was
 * taken away) the signal is aborted, the iterator closed, and the job completes unrun.
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
  let pending: string[] = []
  /** The seq of pending[0]. */
  let pendingFirst = 1
  let pendingBytes = 0
  let inFlight: Promise<void> | undefined
  let refused: string | undefined
  const close = (reason: Error) => {
    ctrl.abort(reason)
    // Closing runs the generator's finally blocks; whatever they throw is not the caller's concern.
    Promise.resolve()
      .then(() => it.return?.(undefined))
      .catch(() => {})
  }
  // Sends what is pending as one write; when it is stored, the next batch goes.
  const send = () => {
    if (inFlight !== undefined || pending.length === 0 || refused !== undefined) return
    const data = pending
    const first = pendingFirst
    pending = []
    pendingBytes = 0
    inFlight = limits.writer
      .write({ workerId, entryId: entry.entryId, jobId: entry.jobId, seq: first, data })
      .then((status) => {
        inFlight = undefined
        if (status !== 'OK') refused = status
        else send()
      })
  }
  const stored = async () => {
    while (inFlight !== undefined) await inFlight
  }
  try {
    for (;;) {
      const step = await it.next()
      if (refused === undefined && step.done) await stored()
      if (refused !== undefined) {
        close(new HedgeyardError('CANCELLED', refusedMessage(refused), { jobId: entry.jobId }))
        return SKIP
      }
      if (step.done) return encodeResult(step.value, workerId, entry.copy, limits.maxResultBytes)
      // A job sent with `submit` wants the result only: its chunks go nowhere.
      if (entry.race !== 's') continue
      seq++
      const overflow = checkChunk(step.value, seq, limits)
      if (typeof overflow !== 'string') {
        await stored()
        close(overflow)
        return failure(workerId, entry.copy, {
          code: 'STREAM_OVERFLOW',
          name: 'HedgeyardError',
          message: overflow.message,
        })
      }
      if (pending.length === 0) pendingFirst = seq
      pending.push(overflow)
      pendingBytes += overflow.length
      send()
      // A batch is full: the handler waits for the write under way. Otherwise, while a write is
      // under way, the handler goes on after the other jobs have had their turn: a generator that
      // never awaits would run to its end in microtasks, and every job's chunks would wait for all
      // the others' before the first write.
      if (pending.length >= MAX_CHUNKS_PER_WRITE || pendingBytes >= MAX_BYTES_PER_WRITE) await inFlight
      else if (inFlight !== undefined) await nextTurn()
    }
  } catch (err) {
    await stored().catch(() => {})
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
