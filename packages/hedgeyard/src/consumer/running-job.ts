import type { Logger } from 'pino'
import type { ProcessTrace } from '../observe/tracing.js'
import type { JobEntry } from '../protocol/codec.js'
import { MAX_TIMER_MS } from '../protocol/validate.js'
import { abortError, type LazyAbort } from './lazy-abort.js'
import { failure, type JobResult } from './run-job.js'

/** How long a handler may run on after its deadline (its signal aborted) before its slot is freed. */
export const ABANDON_GRACE_MS = 1_000

/** What the jobs of one worker share: made once per worker, not per job. */
export interface JobOwner {
  workerId: string
  logger: Logger
  /** Redis time now, in ms. */
  redisNow(): number
  /**
   * The job ended: with a result, it is to be completed; without one (its worker stopped), its
   * entry stays pending.
   */
  ended(job: RunningJob, result: JobResult | undefined): void
}

/** The result of a job whose handler went on past its deadline. */
export function abandoned(workerId: string, copy: number): JobResult {
  return failure(workerId, copy, {
    code: 'TIMEOUT',
    name: 'HedgeyardError',
    message: 'the handler did not finish by the deadline',
  })
}

/**
 * A job whose handler did not return at once: it holds a slot until it ends, once. At its
 * deadline its signal is aborted; a handler that ignores its signal and hangs must not hold the
 * slot forever, so after a grace period the job fails with TIMEOUT and its slot is freed (a late
 * return is ignored). A deadline further off than a timer waits (an entry written by another
 * client, or one without a deadline) is waited for in steps of the longest wait; an entry whose
 * deadline is not a number runs without one.
 */
export class RunningJob {
  readonly entry: JobEntry
  readonly ctrl: LazyAbort
  /** When its handler started (ms, this host; 0 when no metrics sink wants it). */
  readonly startedAt: number
  readonly tracing: ProcessTrace | undefined
  readonly #owner: JobOwner
  #timer: NodeJS.Timeout | undefined
  #isFinished = false
  #isPastDeadline = false

  constructor(
    owner: JobOwner,
    entry: JobEntry,
    ctrl: LazyAbort,
    startedAt: number,
    tracing: ProcessTrace | undefined,
    remainingMs: number,
  ) {
    this.#owner = owner
    this.entry = entry
    this.ctrl = ctrl
    this.startedAt = startedAt
    this.tracing = tracing
    if (!Number.isNaN(remainingMs)) this.#arm(remainingMs)
  }

  /** Ends the job (the first call only): with a result, as that; without one, left pending. */
  finish(result: JobResult | undefined): void {
    if (this.#isFinished) return
    this.#isFinished = true
    // A handler that ends once its deadline aborted it ended after its caller was told TIMEOUT
    // (or is about to be): whatever it returns or throws, its result is TIMEOUT, as for one
    // abandoned past the grace, so that the caller's recovery read cannot find another answer.
    if (this.#isPastDeadline && (result?.outcome === 'err' || result?.outcome === 'ok')) {
      result = abandoned(this.#owner.workerId, this.entry.copy)
    }
    clearTimeout(this.#timer)
    this.#owner.ended(this, result)
  }

  #arm(leftMs: number): void {
    this.#timer =
      leftMs > MAX_TIMER_MS
        ? setTimeout(() => this.#arm(this.entry.deadline - this.#owner.redisNow()), MAX_TIMER_MS)
        : setTimeout(() => this.#onDeadline(), leftMs)
  }

  #onDeadline(): void {
    this.#isPastDeadline = true
    this.ctrl.abort(abortError('deadline exceeded'))
    this.#timer = setTimeout(() => {
      this.#owner.logger.warn(
        { jobId: this.entry.jobId },
        'handler still running past the deadline; abandoning it',
      )
      this.finish(abandoned(this.#owner.workerId, this.entry.copy))
    }, ABANDON_GRACE_MS)
  }
}
