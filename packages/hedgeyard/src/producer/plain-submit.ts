import { outcomeLabel } from '../observe/metrics-sink.js'
import { SubmitTrace } from '../observe/tracing.js'
import { type Envelope, envelopeError } from '../protocol/codec.js'
import { HedgeyardError } from '../protocol/errors.js'
import type { DispatchItem, DispatchOutcome } from '../protocol/scripts/dispatch.js'
import { unwatchAbort, watchAbort } from './abort-watch.js'
import { CopyRace, type RaceDeps, type RacePlan } from './copy-race.js'
import type { Deadline, Deadlines } from './deadlines.js'
import type { DispatchBatcher, DispatchListener } from './dispatch-batcher.js'
import { type Refusal, redisWaitedOut } from './refusals.js'
import type { ResultHandler, ResultListener } from './result-listener.js'
import type { CheckedSubmit } from './submit-options.js'

/** How long a timed-out submit waits for its one read of the job's result. */
export const RECOVERY_WAIT_MS = 1_000

/** What plain submits need from their dispatcher: one object per dispatcher. */
export interface PlainDeps {
  pool: string
  batcher: DispatchBatcher
  results: ResultListener
  /** The submits' deadlines, on one timer that keeps the process alive while one is due. */
  deadlines: Deadlines
  race: RaceDeps
  /** The submit settled: the dispatcher's latency, throttle, metrics and counters, then its caller. */
  settled(job: PlainSubmit, err: unknown, value: unknown): void
  /** Its caller aborted it: stop the job where it is (unread: removed; running: aborted). */
  stopAborted(jobId: string, workers: readonly string[] | undefined): void
}

/** What a submit whose signal was aborted fails with. */
export function abortedError(signal: AbortSignal): HedgeyardError {
  return new HedgeyardError('ABORTED', 'the submit was aborted', { cause: signal.reason })
}

/**
 * Whether a submit is plain: one copy, to any worker, that nothing but its result, its deadline,
 * a refusal or its abort signal can end (no hedge, retry, session or tenant). Most submits are;
 * a gateway's, with the signal of the client's connection, too.
 */
export function isPlainSubmit(checked: CheckedSubmit): boolean {
  return (
    checked.hedge === undefined &&
    checked.retry === undefined &&
    checked.session === '' &&
    checked.limitKey === undefined
  )
}

/** The submit whose promise is being made: see {@link plainSubmitPromise}. */
let adopting: PlainSubmit | undefined

function adopt(resolve: (value: unknown) => void, reject: (err: unknown) => void): void {
  const job = adopting as PlainSubmit
  job.resolve = resolve
  job.reject = reject
}

/**
 * The promise of a plain submit, whose resolving functions the job keeps. The executor is one
 * function for every submit (it runs synchronously, so a module variable hands it the job): an
 * executor per submit would be one more closure per job.
 */
export function plainSubmitPromise<T>(job: PlainSubmit): Promise<T> {
  adopting = job
  const promise = new Promise<T>(
    adopt as (resolve: (value: T) => void, reject: (err: unknown) => void) => void,
  )
  adopting = undefined
  return promise
}

/**
 * One plain submit, from its dispatch to its result, as one object and no closure: it is the
 * dispatch item of its one copy, its own deadline, the handler of its result and the listener of
 * its dispatch reply. What the common case does not need is made only when it happens: a copy the
 * pool refuses (full, over its quota) is handed to a {@link CopyRace}, which owns the waits and
 * backoffs of every other submit; a timeout makes the recovery read's closures.
 */
export class PlainSubmit implements DispatchItem, Deadline, ResultHandler, DispatchListener {
  jobId = ''
  readonly payload: string
  /** Its deadline, once started: ms since the epoch. */
  at = 0
  heapIndex = -1
  resolve: (value: unknown) => void = noop
  reject: (err: unknown) => void = noop
  readonly #deps: PlainDeps
  /** Its options: for a submit without any, the dispatcher's one object of defaults. */
  readonly #checked: CheckedSubmit
  #trace: SubmitTrace | undefined
  /** The race that took the job over after a refusal. */
  #copyRace: CopyRace | undefined
  /** The caller's abort signal, when it gave one; the submit is its listener (handleEvent). */
  readonly #signal: AbortSignal | undefined
  /** The worker its copy was queued on, once the dispatch reply says. */
  #workerId = ''
  #isSettled = false
  /**
   * While its job waits for Redis: what it fails with at its deadline if it still does; and, once
   * it is sent again, the time it has left (its timeoutMs then). Undefined in the common case.
   */
  #redisWait: { err: HedgeyardError; leftMs: number } | undefined
  // The item fields every plain job has alike are on the prototype (below), and the others are
  // read from its options: a submit is a few fields, not a copy of its options.
  declare readonly session: ''
  declare readonly attempt: 1
  declare readonly exclude: ''
  declare readonly race: ''
  declare readonly copies: 1

  constructor(deps: PlainDeps, checked: CheckedSubmit, payload: string, signal?: AbortSignal) {
    this.#deps = deps
    this.#checked = checked
    this.payload = payload
    this.#signal = signal
  }

  get timeoutMs(): number {
    return this.#redisWait === undefined ? this.#checked.timeoutMs : this.#redisWait.leftMs
  }

  get maxAttempts(): number {
    return this.#checked.maxAttempts
  }

  get cost(): number {
    return this.#checked.cost
  }

  /** The traceparent its copy carries, when an OpenTelemetry SDK is registered. */
  get traceparent(): string | undefined {
    return this.#trace?.traceparent
  }

  /** When it was started (connected, given its id), ms since the epoch; undefined before. */
  get startedAt(): number | undefined {
    return this.at === 0 ? undefined : this.at - this.#checked.timeoutMs
  }

  /** Sends the job, listening for its result first: a fast worker can answer before the dispatch reply. */
  start(jobId: string): void {
    this.jobId = jobId
    this.at = Date.now() + this.#checked.timeoutMs
    // The first copy carries the submit's own span: its traceparent is the trace's.
    this.#trace = SubmitTrace.start(this.#deps.pool, jobId)
    this.#deps.deadlines.insert(this)
    this.#deps.results.expect(jobId, this)
    if (this.#signal !== undefined) {
      // Aborted while it waited for a connection: it ends before it is sent.
      if (this.#signal.aborted) {
        this.settle(abortedError(this.#signal))
        return
      }
      watchAbort(this.#signal, this)
    }
    this.#deps.batcher.send(this, this)
  }

  /** Its signal was aborted: it fails with ABORTED, and its job stops where it is. */
  handleEvent(): void {
    if (this.#isSettled) return
    this.settle(abortedError(this.#signal as AbortSignal))
    const workers = this.#copyRace?.workers ?? (this.#workerId === '' ? undefined : [this.#workerId])
    this.#deps.stopAborted(this.jobId, workers)
  }

  /** Its dispatch reply: queued (nothing to do until the result), refused, or the call failed. */
  dispatched(err: unknown, outcome: DispatchOutcome | undefined): void {
    if (outcome === undefined) {
      this.settle(err)
      return
    }
    // It reached Redis: from here on its deadline is a plain TIMEOUT (or a refusal's).
    this.#redisWait = undefined
    if (outcome.status === 'queued') this.#workerId = outcome.workerId
    else this.#handOver(outcome)
  }

  /** Redis cannot be reached: with onRedisUnavailable 'wait', the job waits, up to its deadline (see DispatchListener). */
  waitsForRedis(err: HedgeyardError): boolean {
    const leftMs = this.at - Date.now()
    if (this.#isSettled || this.#checked.onRedisUnavailable === 'reject' || leftMs <= 0) return false
    this.#redisWait = { err: this.#redisWait?.err ?? redisWaitedOut(err, this.jobId), leftMs }
    return true
  }

  /** Its result as a plain success, its value alone (see ResultListener). */
  onValue(value: unknown): void {
    // A race that took the job over reads envelopes; a success's other fields are nothing to a
    // race of one copy at a time.
    if (this.#copyRace !== undefined) this.#copyRace.onEnvelope({ ok: true, value, workerId: '' })
    else this.#settle(undefined, value, false)
  }

  /** Its result, over pub/sub or read back. */
  onEnvelope(env: Envelope): void {
    if (this.#copyRace !== undefined) {
      this.#copyRace.onEnvelope(env)
      return
    }
    if (this.#isSettled) return
    if (typeof env.cost === 'number') this.#deps.race.costReported(this, env.cost)
    if (env.ok) this.#settle(undefined, env.value, false)
    else this.#settle(envelopeError(this.jobId, env), undefined, false)
  }

  /**
   * Its deadline passed. Before TIMEOUT, one read of the job's result: a worker may have stored it
   * without its PUBLISH reaching us (a refused PUBLISH, a lost message); the result wins if it is
   * there. A read that does not answer within RECOVERY_WAIT_MS does not hold the TIMEOUT back.
   * A job still waiting out a refusal (it never reached a worker) fails with that refusal instead.
   */
  fire(): void {
    const refused = this.#copyRace?.refusalWaitedOut ?? this.#redisWait?.err
    if (refused !== undefined) {
      this.settle(refused)
      return
    }
    const timedOut = () =>
      this.settle(
        new HedgeyardError('TIMEOUT', `no result within ${this.#checked.timeoutMs} ms`, {
          jobId: this.jobId,
        }),
      )
    setTimeout(timedOut, RECOVERY_WAIT_MS).unref()
    this.#deps.results.recoverJobs([this.jobId]).then(timedOut, timedOut)
  }

  /** Settles the submit once; later calls do nothing. */
  settle(err: unknown, value?: unknown): void {
    this.#settle(err, value, true)
  }

  /**
   * Settles the submit once; `isWaiting` is false when its result was heard, for the listener
   * stops waiting for a plain job when it hands it its result.
   */
  #settle(err: unknown, value: unknown, isWaiting: boolean): void {
    if (this.#isSettled) return
    this.#isSettled = true
    this.#deps.deadlines.cancel(this)
    if (this.#signal !== undefined) unwatchAbort(this.#signal, this)
    this.#copyRace?.stop()
    if (isWaiting) this.#deps.results.forget(this.jobId)
    this.#trace?.end(err === undefined ? undefined : outcomeLabel(err), (err as Error | undefined)?.message)
    this.#deps.settled(this, err, value)
  }

  /** A refused copy: a race takes the job over, to wait and send again or to fail it. */
  #handOver(refusal: Refusal): void {
    const plan: RacePlan = {
      jobId: this.jobId,
      session: '',
      payload: this.payload,
      deadline: this.at,
      maxAttempts: this.maxAttempts,
      onSaturated: this.#checked.onSaturated,
      cost: this.cost,
      onRateLimited: this.#checked.onRateLimited,
      onRedisUnavailable: this.#checked.onRedisUnavailable,
    }
    if (this.#trace !== undefined) plan.trace = this.#trace
    const race = new CopyRace(this.#deps.race, plan, (err, value) => this.settle(err, value))
    this.#copyRace = race
    // Settled already (it timed out before the reply): the race only counts the refusal.
    if (this.#isSettled) race.stop()
    race.takeOver(refusal)
  }
}

Object.assign(PlainSubmit.prototype, { session: '', attempt: 1, exclude: '', race: '', copies: 1 })

function noop(): void {}
