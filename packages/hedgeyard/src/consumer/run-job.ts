import { isHttpStatus, type JobEntry, type RemoteError } from '../protocol/codec.js'
import type { Outcome } from '../protocol/scripts/complete.js'
import { checkInt } from '../protocol/validate.js'
import { MAX_JOB_COST } from '../protocol/wire.js'
import type { LazyAbort } from './lazy-abort.js'
import type { StreamLimits } from './stream-job.js'

/**
 * What a handler gets beside the request. It is an object of a class: read or destructure its
 * fields (`const { signal, reportCost } = ctx` works); a spread (`{ ...ctx }`) copies only the plain
 * fields, not `signal` and `reportCost`.
 */
export interface JobContext {
  jobId: string
  workerId: string
  /** The session of the request, or undefined. */
  session: string | undefined
  /** 1 for the first copy of a job; higher for hedge copies and retries. */
  attempt: number
  /** Aborted when the job's deadline passes or the worker stops waiting for it. */
  signal: AbortSignal
  /** The job's deadline, in ms since the epoch (Redis time). */
  deadline: number
  /**
   * What the job really cost, in the units of the pool's cost budget (the tokens a model call
   * used, say): the producer then corrects the budget by the difference from the submit's `cost`.
   * @throws HedgeyardError INVALID_ARGUMENT for a number that is not a whole number from 0.
   */
  reportCost(units: number): void
}

/**
 * A worker's handler: gets the request and its context, returns a JSON-serialisable result. A
 * handler may be an async generator: each value it yields is a chunk the caller of
 * `Dispatcher.stream` receives as it comes, and its return value is the result.
 */
export type Handler<Req = unknown, Res = unknown> = (
  req: Req,
  ctx: JobContext,
) => Res | Promise<Res> | AsyncIterator<unknown, Res>

/** The outcome of running one job, ready for the complete script. */
export interface JobResult {
  outcome: Outcome
  envelope: string
}

/** Runs a streaming handler's iterator to its result (stream-job's runStream). */
export type StreamRunner = (
  it: AsyncIterator<unknown, unknown>,
  entry: JobEntry,
  workerId: string,
  abort: LazyAbort,
  limits: StreamLimits,
) => Promise<JobResult>

/**
 * Runs the handler on one entry and encodes the result envelope; never throws. A handler that
 * returns a plain value (not a promise) gets its result back in the same call, without a
 * promise or a microtask: short synchronous jobs are the common case the worker must make cheap.
 * The stream runner is passed in, not a closure over the job, so that a job that does not stream
 * makes none.
 */
export function runJob(
  handler: Handler,
  entry: JobEntry,
  workerId: string,
  abort: LazyAbort,
  limits: StreamLimits,
  onStream: StreamRunner,
): JobResult | Promise<JobResult> {
  let req: unknown
  try {
    req = JSON.parse(entry.payload)
  } catch {
    return failure(workerId, entry.copy, {
      code: 'PROTOCOL_ERROR',
      name: 'HedgeyardError',
      message: 'the request payload is not valid JSON',
    })
  }
  let value: unknown
  const ctx = new HandlerContext(entry, workerId, abort)
  try {
    value = handler(req, ctx)
  } catch (err) {
    return withCost(failure(workerId, entry.copy, remoteError(err)), ctx.reportedUnits)
  }
  if (isAsyncIterator(value)) {
    return onStream(value, entry, workerId, abort, limits).then((r) => withCost(r, ctx.reportedUnits))
  }
  const maxResultBytes = limits.maxResultBytes
  if (isThenable(value)) {
    return Promise.resolve(value).then(
      (settled) => withCost(encodeResult(settled, workerId, entry.copy, maxResultBytes), ctx.reportedUnits),
      (err: unknown) => withCost(failure(workerId, entry.copy, remoteError(err)), ctx.reportedUnits),
    )
  }
  return withCost(encodeResult(value, workerId, entry.copy, maxResultBytes), ctx.reportedUnits)
}

/**
 * A job's context, one object per job: its signal and reportCost are accessors of the class, not a
 * getter and a closure made for every job. Read as a property (destructured, say) reportCost is a
 * function bound to its job, made only then.
 */
class HandlerContext implements JobContext {
  readonly jobId: string
  readonly workerId: string
  readonly session: string | undefined
  readonly attempt: number
  readonly deadline: number
  readonly #abort: LazyAbort
  #reported: number | undefined = undefined

  constructor(entry: JobEntry, workerId: string, abort: LazyAbort) {
    this.jobId = entry.jobId
    this.workerId = workerId
    this.session = entry.session === '' ? undefined : entry.session
    this.attempt = entry.attempt
    this.deadline = entry.deadline
    this.#abort = abort
  }

  get signal(): AbortSignal {
    return this.#abort.signal
  }

  get reportCost(): (units: number) => void {
    return (units) => {
      this.#reported = checkInt('reportCost', units, 0, MAX_JOB_COST)
    }
  }

  /** The cost its handler reported, if it did. */
  get reportedUnits(): number | undefined {
    return this.#reported
  }
}

/** The envelope with the cost its handler reported (`"cost":n`), when it reported one. */
function withCost(result: JobResult, units: number | undefined): JobResult {
  if (units === undefined || result.outcome === 'skip') return result
  return {
    outcome: result.outcome,
    envelope: JSON.stringify({ ...JSON.parse(result.envelope), cost: units }),
  }
}

function isAsyncIterator(value: unknown): value is AsyncIterator<unknown, unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function' &&
    typeof (value as { next?: unknown }).next === 'function'
  )
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  )
}

/** The head of the last success envelope made, for the worker and copy it was made for. */
let lastHead = { workerId: '', copy: 0, text: '' }

/**
 * `{"ok":true,"workerId":..,"copy":..` of a success envelope: made again only when the worker or
 * the copy changes, which in a process that runs one worker's first copies is seldom.
 */
function envelopeHead(workerId: string, copy: number): string {
  if (lastHead.workerId !== workerId || lastHead.copy !== copy) {
    lastHead = { workerId, copy, text: `{"ok":true,"workerId":${JSON.stringify(workerId)},"copy":${copy}` }
  }
  return lastHead.text
}

/** The success envelope `{"ok":true,"workerId":..,"copy":..,"value":..}`, or a failure if it cannot be made. */
export function encodeResult(
  value: unknown,
  workerId: string,
  copy: number,
  maxResultBytes: number,
): JobResult {
  let envelope: string
  try {
    // Built by hand around the value's JSON: the same text JSON.stringify gives for the whole
    // envelope object, without making that object for every job.
    const json = JSON.stringify(value)
    const head = envelopeHead(workerId, copy)
    envelope = json === undefined ? `${head}}` : `${head},"value":${json}}`
  } catch (err) {
    return failure(workerId, copy, {
      code: 'HANDLER_ERROR',
      name: 'TypeError',
      message: `the handler's result is not JSON-serialisable: ${(err as Error).message}`,
    })
  }
  if (envelope.length > maxResultBytes / 3 && Buffer.byteLength(envelope) > maxResultBytes) {
    return failure(workerId, copy, {
      code: 'RESULT_TOO_LARGE',
      name: 'HedgeyardError',
      message: `the handler's result takes ${Buffer.byteLength(envelope)} bytes as JSON in its envelope; maxResultBytes is ${maxResultBytes}`,
    })
  }
  return { outcome: 'ok', envelope }
}

/** A failed job's result envelope. */
export function failure(workerId: string, copy: number, error: RemoteError): JobResult {
  return { outcome: 'err', envelope: JSON.stringify({ ok: false, workerId, copy, error }) }
}

/** A 429 without a delay cools its worker down this long. */
export const DEFAULT_COOLDOWN_MS = 1_000
/** The longest cooldown a handler error can ask for. */
export const MAX_COOLDOWN_MS = 3_600_000

/**
 * How long a handler error asks its worker to stay out of dispatch: its `retryAfterMs` (the
 * upstream's Retry-After or RetryInfo), or DEFAULT_COOLDOWN_MS for a `status: 429` without one.
 */
function coolDownOf(err: Error): number | undefined {
  const e = err as { retryAfterMs?: unknown; status?: unknown }
  if (typeof e.retryAfterMs === 'number' && Number.isFinite(e.retryAfterMs) && e.retryAfterMs > 0) {
    return Math.min(Math.ceil(e.retryAfterMs), MAX_COOLDOWN_MS)
  }
  return e.status === 429 ? DEFAULT_COOLDOWN_MS : undefined
}

/** Describes whatever a handler threw, including non-Error values. */
export function remoteError(err: unknown): RemoteError {
  if (err instanceof Error) {
    const retryable = (err as { retryable?: unknown }).retryable === true
    const retryAfterMs = coolDownOf(err)
    const status = (err as { status?: unknown }).status
    return {
      code: 'HANDLER_ERROR',
      name: err.name,
      message: err.message,
      ...(retryable ? { retryable } : {}),
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      ...(isHttpStatus(status) ? { status } : {}),
    }
  }
  let message: string
  try {
    message = typeof err === 'string' ? err : (JSON.stringify(err) ?? String(err))
  } catch {
    message = String(err)
  }
  return {
    code: 'HANDLER_ERROR',
    name: 'NonError',
    message: `the handler threw a non-Error value: ${message}`,
  }
}
