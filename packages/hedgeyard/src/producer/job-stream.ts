import { HedgeyardError } from '../protocol/errors.js'

/** One chunk of a streamed job: `seq` counts from 1 in the order the handler yielded them. */
export interface StreamChunk<T = unknown> {
  seq: number
  data: T
}

/** Chunks a stream holds for a reader that has not taken them yet, before reading pauses. */
export const STREAM_HIGH_WATER = 256

/** The producer's side of a stream: how chunks and the end reach it. */
export interface StreamSink {
  push(chunk: StreamChunk): void
  /** Ends the stream: with an error, or with the job's result. Later calls do nothing. */
  end(err: unknown, value?: unknown): void
  readonly isEnded: boolean
  /** Whether the reader wants more chunks now (false while it has STREAM_HIGH_WATER unread). */
  wantsMore(): boolean
  /** A worker has the job queued (for a resume: the job exists). */
  markQueued(): void
}

interface State {
  buffer: StreamChunk[]
  waiter: (() => void) | undefined
  isEnded: boolean
  error: unknown
  hasThrown: boolean
  hasExited: boolean
  onExit: () => void
  onDrained: () => void
}

/**
 * A streamed job, as `Dispatcher.stream` and `Dispatcher.resume` return it: iterate it with
 * `for await` for its chunks, await `result` for what the handler returned. Iteration ends after
 * the last chunk, or throws the job's error. Leaving the loop early (`break`, `return`, a throw)
 * cancels the job everywhere; `result` then rejects with CANCELLED.
 */
export class JobStream<Chunk = unknown, Res = unknown> implements AsyncIterable<StreamChunk<Chunk>> {
  /** The job's id: `resume` and `cancelJob` take it, from any host. */
  readonly jobId: string
  /** The handler's return value; rejects with the job's error. */
  readonly result: Promise<Res>
  /**
   * Settles once a worker has the job queued (a `resume` is queued already), or rejects with the
   * reason it could not be: SATURATED, NO_WORKERS, RATE_LIMITED... An HTTP front door answers
   * "accepted" on it.
   */
  readonly queued: Promise<void>
  readonly #state: State

  /** @internal Made by the dispatcher. */
  constructor(jobId: string, state: State, result: Promise<Res>, queued: Promise<void>) {
    this.jobId = jobId
    this.#state = state
    this.result = result
    this.queued = queued
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamChunk<Chunk>> {
    const s = this.#state
    const next = async (): Promise<IteratorResult<StreamChunk<Chunk>>> => {
      for (;;) {
        const chunk = s.buffer.shift()
        if (chunk !== undefined) {
          if (s.buffer.length === STREAM_HIGH_WATER / 2) s.onDrained()
          return { value: chunk as StreamChunk<Chunk>, done: false }
        }
        if (s.isEnded || s.hasExited) {
          if (s.error !== undefined && !s.hasThrown && !s.hasExited) {
            s.hasThrown = true
            throw s.error
          }
          return { value: undefined, done: true }
        }
        await new Promise<void>((resolve) => {
          s.waiter = resolve
        })
      }
    }
    return {
      next,
      return: async () => {
        if (!s.isEnded && !s.hasExited) {
          s.hasExited = true
          s.onExit()
        }
        s.hasExited = true
        s.buffer = []
        return { value: undefined, done: true }
      },
    }
  }
}

/**
 * Makes a stream and the sink that feeds it. `onExit` runs when the reader leaves before the end;
 * `onDrained` when a reader that had fallen behind has taken half of what was waiting.
 */
export function createJobStream<Chunk, Res>(
  jobId: string,
  onExit: () => void,
  onDrained: () => void,
): { stream: JobStream<Chunk, Res>; sink: StreamSink } {
  let settle!: (err: unknown, value?: unknown) => void
  const result = new Promise<Res>((resolve, reject) => {
    settle = (err, value) => (err === undefined ? resolve(value as Res) : reject(err))
  })
  let settleQueued!: (err: unknown) => void
  const queued = new Promise<void>((resolve, reject) => {
    settleQueued = (err) => (err === undefined ? resolve() : reject(err))
  })
  // A caller that only iterates sees the error there: `result` must not also be reported unhandled.
  result.catch(() => {})
  queued.catch(() => {})
  const state: State = {
    buffer: [],
    waiter: undefined,
    isEnded: false,
    error: undefined,
    hasThrown: false,
    hasExited: false,
    onExit,
    onDrained,
  }
  const wake = () => {
    const w = state.waiter
    state.waiter = undefined
    w?.()
  }
  const sink: StreamSink = {
    push(chunk) {
      if (state.isEnded || state.hasExited) return
      state.buffer.push(chunk)
      wake()
    },
    end(err, value) {
      if (state.isEnded) return
      state.isEnded = true
      state.error = err
      settle(err, value)
      // Ended before it was queued: it never will be (a promise settles once, so this is a no-op
      // for a stream that was queued).
      settleQueued(err)
      wake()
    },
    markQueued() {
      settleQueued(undefined)
    },
    get isEnded() {
      return state.isEnded
    },
    wantsMore() {
      return !state.isEnded && !state.hasExited && state.buffer.length < STREAM_HIGH_WATER
    },
  }
  return { stream: new JobStream<Chunk, Res>(jobId, state, result, queued), sink }
}

/** The error a stream left early ends with. */
export function exitedError(jobId: string): HedgeyardError {
  return new HedgeyardError('CANCELLED', 'the stream was closed by its reader', { jobId })
}
