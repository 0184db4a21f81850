import type { SubmitTrace } from '../observe/tracing.js'
import { type Envelope, envelopeError } from '../protocol/codec.js'
import { HedgeyardError } from '../protocol/errors.js'
import type { DispatchItem, DispatchOutcome } from '../protocol/scripts/dispatch.js'
import type { DispatchBatcher } from './dispatch-batcher.js'
import type { HedgeBudget } from './hedge-budget.js'
import { type Refusal, redisWaitedOut, refusalError } from './refusals.js'
import type { SaturationWaits } from './saturation-waits.js'
import type { TenantWaiter, TenantWaits } from './tenant-waits.js'

/** How one submit's copies are run: a plain job has one copy and no timers. */
export interface RacePlan {
  jobId: string
  session: string
  payload: string
  /** Absolute deadline, ms on this host's clock. */
  deadline: number
  maxAttempts: number
  onSaturated: 'reject' | 'wait'
  /** Units each copy takes from the pool's cost budget. */
  cost: number
  onRateLimited: 'wait' | 'reject'
  /** While Redis cannot be reached: hold the copies until it answers again, or fail. */
  onRedisUnavailable: 'wait' | 'reject'
  /** Hedged: after `delayMs` without a result another copy goes to another worker, up to `maxCopies`. */
  hedge?: { delayMs: number; maxCopies: number; isTied: boolean }
  /** Retried: a copy that fails with a retryable error is followed by another, up to `maxCopies`. */
  retry?: { maxCopies: number; backoffMs: number }
  /** Streamed: copies race to the first chunk (race 's'); after it, no copy is sent or heard. */
  isStream?: boolean
  /** Called once, when a worker first has a copy of the job queued. */
  onQueued?: () => void
  /** The tenant whose class limits apply (submit option limitKey), and its class. */
  limitKey?: string
  limitClass?: string
  /** Its spans, when an OpenTelemetry SDK is registered: each copy carries its span's context. */
  trace?: SubmitTrace
}

/** What a cost correction needs of a job: what it was charged, and its tenant. */
export interface CostedJob {
  jobId: string
  cost: number
  limitKey?: string | undefined
  limitClass?: string | undefined
}

/** Counters a race updates, owned by the dispatcher. */
export interface RaceCounters {
  affinityHits: number
  affinityMisses: number
  saturated: number
  /** Dispatch attempts the pool's quota held back. */
  rateLimited: number
  hedgesSent: number
  hedgesWon: number
  hedgesCancelled: number
  hedgesDenied: number
  retriesSent: number
}

/** What a race needs from its dispatcher. */
export interface RaceDeps {
  pool: string
  /** Sends each copy (the dispatcher's DispatchBatcher: one dispatch call per event-loop turn). */
  batcher: Pick<DispatchBatcher, 'send'>
  budget: HedgeBudget
  counters: RaceCounters
  /** Requests of tenants at their cap, parked until a slot may be free. */
  tenants: TenantWaits
  /** Requests the pool refused for want of room, waiting for it (onSaturated 'wait'). */
  saturation: SaturationWaits
  /** Takes a job that ended without an elected result out of its tenant's jobs in flight. */
  releaseSlot: (limitKey: string, jobId: string) => void
  /** A copy's worker reported what it really cost (ctx.reportCost): the budgets are corrected. */
  costReported: (job: CostedJob, units: number) => void
}

/**
 * Runs the copies of one submit: the first at once, hedges after the delay, a retry after a
 * retryable failure, each to a worker no earlier copy went to. The first success settles the
 * race (the complete script elects it and stops the other copies); when every copy has failed
 * and no other may be sent, the last error does.
 */
export class CopyRace {
  readonly #deps: RaceDeps
  readonly #plan: RacePlan
  readonly #settle: (err: unknown, value?: unknown) => void
  /** Workers the copies went to or failed on: the next copy's exclusions. */
  readonly #workers: string[] = []
  #failed: Set<number> | undefined
  #sent = 0
  #outstanding = 0
  #isDone = false
  #isRetryScheduled = false
  #timer: NodeJS.Timeout | undefined
  #lastError: HedgeyardError | undefined
  /** Each failed copy's error, at its copy number less one. */
  #copyErrors: HedgeyardError[] | undefined
  #hasQueued = false
  /** A retry the job still had attempts for was refused by the hedging budget. */
  #wasRetryDenied = false
  /** Copies whose dispatch reply has not come back: until it has, where they went is unknown. */
  #inDispatch = 0
  /** A hedge came due while a copy's dispatch reply was out: it goes when the reply comes. */
  #isHedgeDue = false
  /** Parked while its tenant is at its cap or the pool has no room (onSaturated 'wait'); woken to try again. */
  readonly #waiter: TenantWaiter = { wake: () => this.#wake() }
  #hasLeftTenant = false
  /** Parked once among the requests waiting for room in the pool (saturation-waits.ts): it leaves them when it ends. */
  #isWaitingForRoom = false
  /** The refusal the first copy is waiting out (a 'wait' for room or for the quota). */
  #waitedOut: HedgeyardError | undefined

  constructor(deps: RaceDeps, plan: RacePlan, settle: (err: unknown, value?: unknown) => void) {
    this.#deps = deps
    this.#plan = plan
    this.#settle = settle
  }

  /** Whether copies can fail without ending the job (they race). */
  get isRacing(): boolean {
    return this.#plan.hedge !== undefined || this.#plan.retry !== undefined || this.#plan.isStream === true
  }

  /** Workers the copies went to (or failed on). */
  get workers(): readonly string[] {
    return this.#workers
  }

  /**
   * A streamed job emitted its first chunk: the copy that did owns the job. No other copy is sent,
   * and copies' results are no longer this race's concern (the stream's end entry brings the job's).
   */
  begin(): void {
    this.#isDone = true
    clearTimeout(this.#timer)
  }

  /**
   * The refusal the job is waiting out while no copy of it was ever queued: what it fails with at
   * its deadline (SATURATED, NO_WORKERS, RATE_LIMITED), not TIMEOUT, for it never reached a worker.
   * A copy sent again and still in dispatch at the deadline does not change that: it carries the
   * same deadline, so no worker runs it.
   */
  get refusalWaitedOut(): HedgeyardError | undefined {
    return this.#hasQueued ? undefined : this.#waitedOut
  }

  /** Attempt numbers sent so far, for reading failed copies' results after a reconnect. */
  get attemptsSent(): number {
    return this.#sent
  }

  start(): void {
    this.#send(0)
  }

  /**
   * Takes over a job whose one copy was sent without a race (a plain submit, see plain-submit.ts)
   * and refused: from here on the race waits, backs off and sends again, as if it had sent that
   * copy itself.
   */
  takeOver(refusal: Refusal): void {
    this.#sent = 1
    this.#outstanding = 1
    this.#onDispatched(refusal, 1, 0)
  }

  /** Ends the race without settling it (the caller timed out or aborted). */
  stop(): void {
    this.#isDone = true
    clearTimeout(this.#timer)
    this.#leaveTenant(false)
    this.#leaveRoomWait()
  }

  /** A result of one copy arrived (pub/sub or recovery). */
  onEnvelope(env: Envelope): void {
    if (this.#isDone) return
    // A stream's result is read from its end entry, which reports its cost there.
    if (typeof env.cost === 'number' && !(this.#plan.isStream && env.ok))
      this.#deps.costReported(this.#plan, env.cost)
    if (!env.ok && env.copy === 0) {
      // The job was ended from outside (cancelled): no copy may win it any more.
      this.#finish()
      this.#settle(envelopeError(this.#plan.jobId, env))
      return
    }
    if (env.ok) {
      this.#finish()
      const c = this.#deps.counters
      if ((env.copy ?? 1) > 1 && this.#plan.hedge) c.hedgesWon++
      if (this.#outstanding > 1) c.hedgesCancelled += this.#outstanding - 1
      this.#settle(undefined, env.value)
      return
    }
    const error = envelopeError(this.#plan.jobId, env)
    if (!this.isRacing) {
      this.#finish()
      this.#settle(error)
      return
    }
    const copy = env.copy ?? 1
    // A fast failure can arrive (pub/sub) before its copy's dispatch reply (command connection):
    // its envelope names the worker, so the next copy avoids it either way.
    this.#tried(env.workerId)
    this.#failed ??= new Set()
    if (this.#failed.has(copy)) return
    this.#failed.add(copy)
    this.#outstanding--
    this.#lastError = error
    this.#copyErrors ??= []
    this.#copyErrors[copy - 1] = error
    if (error.isRetryable && this.#sent < this.#maxCopies()) {
      const { hedge, retry } = this.#plan
      if (hedge || !retry || retry.backoffMs === 0) this.#extraCopy('retry')
      else {
        this.#isRetryScheduled = true
        setTimeout(() => {
          this.#isRetryScheduled = false
          if (!this.#isDone) this.#extraCopy('retry')
        }, retry.backoffMs)
      }
      return
    }
    // A failure that is not retryable would fail again: no more hedges, the copies out carry on.
    clearTimeout(this.#timer)
    this.#failIfNothingLeft()
  }

  /** Adds a worker to the ones later copies must avoid. */
  #tried(workerId: string): void {
    if (workerId !== '' && !this.#workers.includes(workerId)) this.#workers.push(workerId)
  }

  #maxCopies(): number {
    return Math.max(this.#plan.hedge?.maxCopies ?? 1, this.#plan.retry?.maxCopies ?? 1)
  }

  #finish(): void {
    this.#isDone = true
    clearTimeout(this.#timer)
    this.#leaveTenant(false)
    this.#leaveRoomWait()
  }

  /** The race is over: it leaves the requests waiting for room, parked or woken. */
  #leaveRoomWait(): void {
    if (!this.#isWaitingForRoom) return
    this.#isWaitingForRoom = false
    this.#deps.saturation.leave(this.#waiter)
  }

  #failIfNothingLeft(): void {
    if (this.#outstanding > 0 || this.#isRetryScheduled || this.#isDone) return
    this.#isDone = true
    clearTimeout(this.#timer)
    // Every copy failed and none is out: no result was elected, so no script took the job out of
    // its tenant's jobs in flight.
    this.#leaveTenant(this.#hasQueued)
    this.#leaveRoomWait()
    const errors = this.#copyErrors?.filter((e) => e !== undefined)
    this.#settle(
      // A race whose copies were all refused ends with the refusal it waited out.
      lastWith(this.#lastError ?? this.#waitedOut, {
        ...(this.#wasRetryDenied ? { isRetryDenied: true } : {}),
        ...(errors === undefined ? {} : { errors }),
      }),
    )
  }

  /**
   * The race is over: it leaves its tenant's parked requests, and a job that held a slot lets the
   * tenant's next parked request try (after `isReleasing`, taking the job out of the tenant's jobs
   * in flight; otherwise the script that ended it did, or its deadline will).
   */
  #leaveTenant(isReleasing: boolean): void {
    const tenant = this.#plan.limitKey
    if (tenant === undefined || this.#hasLeftTenant) return
    this.#hasLeftTenant = true
    this.#deps.tenants.leave(tenant, this.#waiter)
    if (isReleasing) this.#deps.releaseSlot(tenant, this.#plan.jobId)
    else if (this.#hasQueued) this.#deps.tenants.freed(tenant)
  }

  /** Its tenant or the pool may have room now: the parked first copy goes again. */
  #wake(): void {
    if (this.#isDone) {
      if (this.#plan.limitKey !== undefined) this.#deps.tenants.leave(this.#plan.limitKey, this.#waiter)
      this.#leaveRoomWait()
      return
    }
    clearTimeout(this.#timer)
    this.#sent = 0
    this.#send(0)
  }

  /** An extra copy (hedge or retry), if the budget allows it. */
  #extraCopy(kind: 'hedge' | 'retry'): void {
    const c = this.#deps.counters
    if (!this.#deps.budget.take()) {
      c.hedgesDenied++
      if (kind === 'retry') this.#wasRetryDenied = true
      this.#failIfNothingLeft()
      return
    }
    this.#send(0, kind)
  }

  #scheduleHedge(): void {
    const hedge = this.#plan.hedge
    if (!hedge || hedge.isTied || this.#sent >= hedge.maxCopies) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      // Timers run before sockets are read: after a stall of this process, the answer may be
      // waiting already. Look at the sockets first, then decide.
      setImmediate(() => {
        // Nothing to hedge when no copy is out: the first was refused meanwhile, and waits for
        // room or for the quota (its hedge is timed again when it goes).
        if (this.#isDone || this.#sent >= hedge.maxCopies || this.#outstanding === 0) return
        // A hedge must avoid the workers the copies went to: wait for the reply that names them
        // (on a busy host it can come after a short hedge delay).
        if (this.#inDispatch > 0) this.#isHedgeDue = true
        else this.#extraCopy('hedge')
      })
    }, hedge.delayMs)
  }

  #send(round: number, kind?: 'hedge' | 'retry'): void {
    const plan = this.#plan
    const attempt = this.#sent + 1
    this.#sent = attempt
    this.#outstanding++
    const isTied = plan.hedge?.isTied === true
    this.#inDispatch++
    const item: DispatchItem = {
      jobId: plan.jobId,
      session: plan.session,
      payload: plan.payload,
      timeoutMs: Math.max(1, plan.deadline - Date.now()),
      attempt,
      maxAttempts: plan.maxAttempts + attempt - 1,
      exclude: this.#workers.join(','),
      race: isTied ? 't' : plan.isStream ? 's' : this.isRacing ? 'h' : '',
      copies: isTied ? 2 : 1,
      cost: plan.cost,
    }
    if (plan.limitKey !== undefined) {
      item.limitKey = plan.limitKey
      if (plan.limitClass !== undefined) item.limitClass = plan.limitClass
    }
    if (plan.trace !== undefined) item.traceparent = plan.trace.copy(attempt, kind)
    this.#deps.batcher.send(item, {
      waitsForRedis: (err) => {
        const leftMs = plan.deadline - Date.now()
        if (this.#isDone || plan.onRedisUnavailable === 'reject' || leftMs <= 0) return false
        // Sent again with what is left of its time, as after any other wait.
        item.timeoutMs = leftMs
        if (attempt === 1 && !this.#hasQueued) this.#waitedOut = redisWaitedOut(err, plan.jobId)
        return true
      },
      dispatched: (err, outcome) => {
        this.#inDispatch--
        if (outcome !== undefined) {
          this.#onDispatched(outcome, attempt, round, kind)
          this.#sendDueHedge()
          return
        }
        this.#outstanding--
        if (attempt === 1) {
          this.#finish()
          this.#settle(err)
        } else this.#failIfNothingLeft()
      },
    })
    this.#scheduleHedge()
  }

  /**
   * The pool's quota (or its tenant's) held a copy back for `retryAfterMs`: with 'wait', it is
   * sent again exactly then (the quota is checked again), if that is before the deadline; else it
   * fails with RATE_LIMITED. An extra copy held back is dropped: the copies out carry on.
   */
  #onRateLimited(limited: HedgeyardError, attempt: number, round: number, kind?: 'hedge' | 'retry'): void {
    this.#deps.counters.rateLimited++
    const retryAfterMs = limited.retryAfterMs as number
    if (attempt > 1) {
      // A retry waits for its slot as a first copy does: the job still needs it. A hedge is only
      // worth its delay: one held back is dropped, and the copies out carry on.
      if (
        kind === 'retry' &&
        this.#plan.onRateLimited === 'wait' &&
        Date.now() + retryAfterMs < this.#plan.deadline
      ) {
        this.#isRetryScheduled = true
        setTimeout(() => {
          this.#isRetryScheduled = false
          if (!this.#isDone) this.#extraCopy('retry')
          else this.#failIfNothingLeft()
        }, retryAfterMs)
        return
      }
      this.#lastError ??= limited
      this.#failIfNothingLeft()
      return
    }
    if (this.#plan.onRateLimited === 'wait' && Date.now() + retryAfterMs < this.#plan.deadline) {
      this.#waitedOut = limited
      clearTimeout(this.#timer)
      this.#timer = setTimeout(() => {
        if (this.#isDone) return
        this.#sent = 0
        this.#send(round, kind)
      }, retryAfterMs)
      return
    }
    this.#finish()
    this.#settle(limited)
  }

  /** Sends the hedge that came due while a dispatch reply was out, now that it is back. */
  #sendDueHedge(): void {
    if (!this.#isHedgeDue || this.#inDispatch > 0) return
    this.#isHedgeDue = false
    // No copy out: nothing to hedge (as in #scheduleHedge).
    if (this.#outstanding === 0) return
    const hedge = this.#plan.hedge
    if (!this.#isDone && hedge && this.#sent < hedge.maxCopies) this.#extraCopy('hedge')
  }

  #onDispatched(outcome: DispatchOutcome, attempt: number, round: number, kind?: 'hedge' | 'retry'): void {
    const c = this.#deps.counters
    const tenant = this.#plan.limitKey
    // A parked request was sent to probe its tenant's room: what came back decides for the next.
    if (tenant !== undefined && outcome.status !== 'TENANT_FULL') {
      this.#deps.tenants.answered(tenant, this.#waiter, outcome.status === 'queued')
    }
    // Likewise the first copy of a request that waited for room in the pool, sent again, unless
    // it is refused for room again.
    if (
      this.#isWaitingForRoom &&
      attempt === 1 &&
      kind === undefined &&
      outcome.status !== 'SATURATED' &&
      outcome.status !== 'NO_WORKERS'
    ) {
      this.#deps.saturation.answered(this.#waiter, outcome.status === 'queued')
    }
    if (outcome.status === 'queued') {
      this.#tried(outcome.workerId)
      if (!this.#hasQueued) {
        this.#hasQueued = true
        this.#plan.onQueued?.()
      }
      if (kind === 'hedge') c.hedgesSent++
      else if (kind === 'retry') c.retriesSent++
      if (this.#plan.session !== '' && attempt === 1) {
        if (outcome.isAffinityHit) c.affinityHits++
        else c.affinityMisses++
      }
      return
    }
    if (outcome.status === 'SATURATED' || outcome.status === 'TENANT_FULL') c.saturated++
    // A copy no worker took costs nothing: its token goes back.
    if (kind !== undefined) this.#deps.budget.refund()
    this.#outstanding--
    if (this.#isDone) return
    this.#onRefused(outcome, attempt, round, kind)
  }

  /** The first copy waits, parked, for what refused it (`refused`), which it fails with at its deadline. */
  #waitOut(refused: HedgeyardError): void {
    this.#waitedOut = refused
    clearTimeout(this.#timer)
    this.#timer = setTimeout(
      () => {
        if (this.#isDone) return
        this.#finish()
        this.#settle(refused)
      },
      Math.max(0, this.#plan.deadline - Date.now() - 1),
    )
  }

  #onRefused(outcome: Refusal, attempt: number, round: number, kind?: 'hedge' | 'retry'): void {
    const plan = this.#plan
    const refused = refusalError(outcome, { ...plan, pool: this.#deps.pool })
    if (outcome.status === 'RATE_LIMITED') {
      this.#onRateLimited(refused, attempt, round, kind)
      return
    }
    if (attempt > 1) {
      // No other worker for an extra copy (or no room for its tenant): the copies out carry on.
      this.#lastError ??= refused
      this.#failIfNothingLeft()
      return
    }
    if (outcome.status === 'TENANT_FULL' && plan.onSaturated === 'wait') {
      // Parked until its tenant may have room (tenant-waits.ts), or SATURATED at its deadline.
      this.#waitOut(refused)
      this.#deps.tenants.park(plan.limitKey as string, this.#waiter)
      return
    }
    if (outcome.status === 'BAD_LIMITS') {
      this.#finish()
      this.#settle(refused)
      return
    }
    if (this.#plan.onSaturated === 'wait' && Date.now() < this.#plan.deadline - 1) {
      // Parked until a job of this producer ends or a probe finds room (saturation-waits.ts), or
      // SATURATED (NO_WORKERS) at its deadline.
      this.#waitOut(refused)
      this.#isWaitingForRoom = true
      this.#deps.saturation.park(this.#waiter)
      return
    }
    this.#finish()
    this.#settle(refused)
  }
}

/**
 * The error a race ends with when no copy succeeded: the last one, with every copy's failure
 * (`errors`), and saying when the retries left were refused by the hedging budget (the caller
 * asked for more attempts than it got, and should know why).
 */
function lastWith(
  err: HedgeyardError | undefined,
  extra: { isRetryDenied?: true; errors?: HedgeyardError[] },
): HedgeyardError | undefined {
  if (err === undefined || (extra.isRetryDenied === undefined && extra.errors === undefined)) return err
  const denied = extra.isRetryDenied === true
  return new HedgeyardError(
    err.code,
    denied
      ? `${err.message} (no retry: the hedging budget, hedging.budgetRatio and budgetBurst, was spent)`
      : err.message,
    {
      cause: denied ? err : err.cause,
      ...(err.remoteName === undefined ? {} : { remoteName: err.remoteName }),
      ...(err.remoteStatus === undefined ? {} : { remoteStatus: err.remoteStatus }),
      ...(err.workerId === undefined ? {} : { workerId: err.workerId }),
      ...(err.jobId === undefined ? {} : { jobId: err.jobId }),
      ...(err.redisPrefix === undefined ? {} : { redisPrefix: err.redisPrefix }),
      ...(err.retryAfterMs === undefined ? {} : { retryAfterMs: err.retryAfterMs }),
      ...(extra.errors === undefined ? {} : { errors: extra.errors }),
      isRetryable: err.isRetryable,
      isRetryDenied: denied || err.isRetryDenied,
    },
  )
}
