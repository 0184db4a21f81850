import type { Logger } from 'pino'
import { outcomeLabel } from '../observe/metrics-sink.js'
import { decodeEnvelope, type Envelope, envelopeError } from '../protocol/codec.js'
import { HedgeyardError } from '../protocol/errors.js'
import { copiesKey, outKey, type PoolKeys, resultKey, resumedKey } from '../protocol/keys.js'
import { type Connection, redisFailure } from '../redis/connection.js'
import { type AbortTarget, unwatchAbort, watchAbort } from './abort-watch.js'
import { CopyRace, type RaceDeps, type RacePlan } from './copy-race.js'
import type { Deadline, Deadlines } from './deadlines.js'
import { endJob } from './end-job.js'
import { createJobStream, exitedError, type JobStream, type StreamSink } from './job-stream.js'
import type { ResultListener } from './result-listener.js'
import type { StreamPushes } from './stream-pushes.js'
import type { OutputSink, StreamReader } from './stream-reader.js'

/** What streams need from their dispatcher. */
export interface StreamDeps {
  keys: PoolKeys
  cmd: Connection
  results: ResultListener
  race: RaceDeps
  reader: () => StreamReader
  /** Feeds this producer's own streams with the chunks and ends pushed to it. */
  pushes: StreamPushes
  /** Every stream's deadline, on one timer. */
  deadlines: Deadlines
  /** How long the end a producer writes (TIMEOUT, CANCELLED...) is kept. */
  endTtlMs: number
  logger: Logger
  /** Called when a stream ends, with its error if it failed: the dispatcher's counters and close(). */
  settled: (err: unknown) => void
}

/** Codes a race fails with before any copy was queued: nothing in Redis to end. */
const NOT_QUEUED = new Set(['SATURATED', 'NO_WORKERS', 'INVALID_ARGUMENT', 'CLOSED'])

/**
 * Starts a streamed job: its copies race (race 's') until one emits its first chunk, which claims
 * the job; the other copies are then stopped, and every later chunk comes from the winner. The
 * stream ends with the end entry of the job's output stream (written by the script that gave the
 * job its result), or with an error here (timeout, abort, the reader leaving, every copy failing),
 * which this producer then writes as the job's end, so that a `resume` elsewhere ends too.
 */
export function startStream<Chunk, Res>(
  deps: StreamDeps,
  plan: RacePlan,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  ready: Promise<void>,
): JobStream<Chunk, Res> {
  const { jobId } = plan
  let race: CopyRace | undefined
  let hasBegun = false
  const run = openStream<Chunk, Res>(deps, jobId, {
    onFirstChunk(owner) {
      if (hasBegun || race === undefined) return
      hasBegun = true
      const sent = race.attemptsSent
      race.begin()
      deps.results.forget(jobId)
      // The other copies lost: stop them now rather than when they start or emit.
      if (sent > 1 && owner !== undefined) {
        const keep = {
          code: 'CANCELLED',
          message: 'another copy of this job began its stream first',
          resultTtlMs: deps.endTtlMs,
          keepEntryId: owner.entryId,
        }
        endJob(deps.cmd, deps.keys, jobId, keep).catch((err: unknown) => {
          deps.logger.debug({ err, jobId }, 'could not stop the losing copies of a stream')
        })
      }
    },
    onEnd(err, writeEnd) {
      plan.trace?.end(err === undefined ? undefined : outcomeLabel(err), (err as Error | undefined)?.message)
      race?.stop()
      deps.results.forget(jobId)
      if (writeEnd && err instanceof HedgeyardError && !NOT_QUEUED.has(err.code)) {
        return writeJobEnd(deps, jobId, err)
      }
      return undefined
    },
    onEndEnvelope(env) {
      if (typeof env.cost === 'number') deps.race.costReported(plan, env.cost)
    },
    timeoutMs,
    isTimeoutFinal: true,
    signal,
  })
  race = new CopyRace(deps.race, { ...plan, isStream: true, onQueued: () => run.markQueued() }, (err) => {
    // A success's end entry brings the result; only a failure here ends the stream, and only when
    // no copy began it: once its output stream exists, its chunks and then its end come pushed
    // or through the reader, in order (a failure heard first over pub/sub would drop chunks
    // already written). A key of another type there (written by someone else) holds no chunks:
    // the failure ends it.
    if (err === undefined) return
    deps.cmd.type(outKey(deps.keys, jobId)).then(
      (type) => {
        if (type !== 'stream') run.fail(err, true)
      },
      () => run.fail(err, true),
    )
  })
  const started = race
  ready.then(
    () => {
      if (run.isEnded()) return
      deps.pushes.add(jobId, run.output)
      // Listen before dispatching: a fast worker can answer before the dispatch reply arrives.
      deps.results.expect(jobId, started, () => started.attemptsSent)
      started.start()
    },
    (err: unknown) => run.fail(err, false),
  )
  return run.stream
}

/**
 * Follows a job's stream from any process: its chunks after `afterSeq`, then its end. A job that
 * ended without a stream (a plain job) gives its result and no chunks.
 * @throws HedgeyardError NOT_FOUND (through the stream) when the pool knows no such job.
 */
export function resumeStream<Chunk, Res>(
  deps: StreamDeps,
  jobId: string,
  afterSeq: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  ready: Promise<void>,
): JobStream<Chunk, Res> {
  const run = openStream<Chunk, Res>(deps, jobId, {
    onFirstChunk() {},
    onEnd(err, writeEnd) {
      if (writeEnd && err instanceof HedgeyardError && (err.code === 'CANCELLED' || err.code === 'ABORTED')) {
        return writeJobEnd(deps, jobId, err)
      }
      return undefined
    },
    timeoutMs,
    // A reader that gives up on a job it resumed does not end the job for others.
    isTimeoutFinal: false,
    signal,
  })
  void (async () => {
    const k = deps.keys
    let found: [number, number, number]
    try {
      await ready
      const [out, res, copies] = await Promise.all([
        deps.cmd.exists(outKey(k, jobId)),
        deps.cmd.exists(resultKey(k, jobId)),
        deps.cmd.exists(copiesKey(k, jobId)),
      ])
      found = [out, res, copies]
    } catch (err) {
      run.fail(err instanceof HedgeyardError ? err : redisFailure(err, 'resume'), false)
      return
    }
    const [out, res, copies] = found
    if (out === 0 && res === 1) {
      // Ended without a stream: its result is all there is.
      const text = await deps.cmd.get(resultKey(k, jobId)).catch(() => null)
      run.markQueued()
      if (text !== null) run.output.onEnd(text)
      else run.fail(new HedgeyardError('NOT_FOUND', `job ${jobId} has expired`, { jobId }), false)
      return
    }
    if (out === 0 && copies === 0) {
      run.fail(new HedgeyardError('NOT_FOUND', `no job ${jobId} in pool`, { jobId }), false)
      return
    }
    run.markQueued()
    // Counted for a reader that left elsewhere and waits to see whether its client came back here.
    deps.cmd
      .multi()
      .incr(resumedKey(k, jobId))
      .pexpire(resumedKey(k, jobId), deps.endTtlMs)
      .exec()
      .catch((err: unknown) => deps.logger.debug({ err, jobId }, 'could not count a resume'))
    deps.reader().add(run.output, `0-${afterSeq}`)
  })()
  return run.stream
}

/** How long a stream's caller waits for the job's end to be written before it hears the end. */
const END_WRITE_WAIT_MS = 1_000

/**
 * Ends a job in Redis with the error its stream ended with here, for every other reader (best
 * effort). Settles once written, or after END_WRITE_WAIT_MS (Redis may be away): the caller hears
 * the end then, so that what any process reads of the job afterwards already says it ended.
 */
function writeJobEnd(deps: StreamDeps, jobId: string, err: HedgeyardError): Promise<void> {
  const written = endJob(deps.cmd, deps.keys, jobId, {
    code: err.code,
    message: err.message,
    resultTtlMs: deps.endTtlMs,
  }).then(
    () => {},
    (e: unknown) => deps.logger.debug({ err: e, jobId }, 'could not write the end of a stream'),
  )
  return new Promise((done) => {
    const timer = setTimeout(done, END_WRITE_WAIT_MS)
    void written.then(() => {
      clearTimeout(timer)
      done()
    })
  })
}

interface OpenHooks {
  onFirstChunk(owner: { workerId: string; entryId: string } | undefined): void
  /** The job's end entry, before the stream ends with it. */
  onEndEnvelope?(env: Envelope): void
  /**
   * The stream ended; `writeEnd` when the end came from here and should be written for others.
   * A promise: the caller hears the end once it settles (the end is written, or given up on).
   */
  onEnd(err: unknown, writeEnd: boolean): Promise<void> | undefined
  timeoutMs: number
  isTimeoutFinal: boolean
  signal: AbortSignal | undefined
}

/** One open stream: its reader-facing output, its caller-facing stream, and how to fail it. */
function openStream<Chunk, Res>(
  deps: StreamDeps,
  jobId: string,
  hooks: OpenHooks,
): {
  stream: JobStream<Chunk, Res>
  output: OutputSink
  fail: (err: unknown, writeEnd: boolean) => void
  isEnded: () => boolean
  markQueued: () => void
} {
  let sink: StreamSink
  let hasChunk = false
  let isFinished = false
  const finish = (err: unknown, value: unknown, writeEnd: boolean) => {
    if (isFinished || sink.isEnded) return
    isFinished = true
    deps.deadlines.cancel(deadline)
    if (hooks.signal && onAbort) unwatchAbort(hooks.signal, onAbort)
    deps.pushes.remove(jobId, output)
    deps.reader().remove(output)
    const writing = hooks.onEnd(err, writeEnd)
    if (writing === undefined) {
      sink.end(err, value)
      deps.settled(err)
      return
    }
    // The end this process decided (a failure, a timeout, an abort) is written first: any process
    // that reads the job after the caller hears of it finds it ended.
    void writing.then(() => {
      sink.end(err, value)
      deps.settled(err)
    })
  }
  const made = createJobStream<Chunk, Res>(
    jobId,
    () => finish(exitedError(jobId), undefined, true),
    () => deps.reader().kick(),
  )
  sink = made.sink
  const output: OutputSink = {
    key: outKey(deps.keys, jobId),
    wantsMore: () => sink.wantsMore(),
    onChunk(seq, value, owner) {
      if (!hasChunk) {
        hasChunk = true
        hooks.onFirstChunk(owner)
      }
      sink.push({ seq, data: value })
    },
    onEnd(text) {
      const env = decodeEnvelope(text)
      hooks.onEndEnvelope?.(env)
      if (env.ok) finish(undefined, env.value, false)
      else finish(envelopeError(jobId, env), undefined, false)
    },
    onMalformed(reason) {
      finish(new HedgeyardError('PROTOCOL_ERROR', reason, { jobId }), undefined, false)
    },
  }
  const deadline: Deadline = deps.deadlines.add(Date.now() + hooks.timeoutMs, () =>
    finish(
      new HedgeyardError('TIMEOUT', `the stream did not end within ${hooks.timeoutMs} ms`, { jobId }),
      undefined,
      hooks.isTimeoutFinal,
    ),
  )
  let onAbort: AbortTarget | undefined
  if (hooks.signal) {
    const signal = hooks.signal
    onAbort = {
      handleEvent: () =>
        finish(
          new HedgeyardError('ABORTED', 'the stream was aborted', { jobId, cause: signal.reason }),
          undefined,
          true,
        ),
    }
    watchAbort(signal, onAbort)
  }
  return {
    stream: made.stream,
    output,
    fail: (err, writeEnd) => finish(err, undefined, writeEnd),
    isEnded: () => isFinished || sink.isEnded,
    markQueued: () => sink.markQueued(),
  }
}
