import type { Logger } from 'pino'
import { notify } from '../observe/metrics-sink.js'
import { endProcessSpan, type ProcessTrace, startProcessSpan, withProcessSpan } from '../observe/tracing.js'
import type { JobEntry } from '../protocol/codec.js'
import type { ClaimVerdict } from '../protocol/scripts/claim.js'
import type { RejectedEntry } from './entry-reader.js'
import { logJob, observeJob, outcomeOf } from './job-report.js'
import { abortError, LazyAbort } from './lazy-abort.js'
import { failure, type JobResult, runJob } from './run-job.js'
import { type JobOwner, RunningJob } from './running-job.js'
import { runStream } from './stream-job.js'
import type { LoopHost, LoopSettings } from './worker-loop.js'

const SKIP: JobResult = { outcome: 'skip', envelope: '' }

/**
 * The jobs one worker holds: it runs at most `concurrency` at once, and keeps the others it has
 * read in a backlog, oldest first. A racing copy is claimed when it is about to start, not when
 * it was read: a tied copy read ahead must not keep its twin, idle on another worker, from
 * starting it. Every change (a slot freed, a claim answered) wakes whoever waits in `changed()`.
 */
export class JobSlots {
  readonly #workerId: string
  readonly #s: LoopSettings
  readonly #host: LoopHost
  readonly #logger: Logger
  readonly #owner: JobOwner
  readonly #running = new Map<string, RunningJob>()
  /** Entries read and not started yet, oldest first. */
  #backlog: JobEntry[] = []
  /** Entry ids of racing entries taken from the backlog whose claim is under way (they hold a slot). */
  readonly #claiming = new Set<string>()
  #isStopped = false
  /** Set when a claim failed: its entries are still pending in Redis and must be read again. */
  #hasClaimFailed = false
  #waiter: (() => void) | undefined

  constructor(workerId: string, settings: LoopSettings, host: LoopHost, logger: Logger) {
    this.#workerId = workerId
    this.#s = settings
    this.#host = host
    this.#logger = logger
    this.#owner = {
      workerId,
      logger,
      redisNow: () => host.redisNow(),
      ended: (job, result) => this.#ended(job, result),
    }
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running.size
  }

  /** Entries held: running, being claimed, or read ahead. */
  get held(): number {
    return this.#running.size + this.#backlog.length + this.#claiming.size
  }

  /** Whether a job runs or a claim is under way: what a stopping worker waits for. */
  get isBusy(): boolean {
    return this.#running.size > 0 || this.#claiming.size > 0
  }

  /** Whether a claim failed since the last call: its entries must be read again from Redis. */
  takeClaimFailure(): boolean {
    const failed = this.#hasClaimFailed
    this.#hasClaimFailed = false
    return failed
  }

  /** Adds entries read to the backlog and starts what the free slots allow. */
  add(entries: readonly JobEntry[]): void {
    for (const entry of entries) this.#backlog.push(entry)
    this.fill()
  }

  /** Adds the pending entries read again that are not held here already. */
  addPending(entries: readonly JobEntry[]): void {
    // A racing copy read before a restart may have lost its race since: like every backlog
    // entry, it is claimed when it starts. An entry whose job ran while Redis was away is pending
    // until its outcome is stored: it is not run again.
    for (const entry of entries) {
      const id = entry.entryId
      if (
        this.#running.has(id) ||
        this.#claiming.has(id) ||
        this.#backlog.some((b) => b.entryId === id) ||
        this.#host.isStoring(this.#workerId, id)
      )
        continue
      this.#backlog.push(entry)
    }
  }

  /** Entries read that cannot run go to the dead letters, each with its reason. */
  reject(rejected: readonly RejectedEntry[]): void {
    for (const { entryId, reason } of rejected) {
      this.#logger.error({ entryId, reason }, 'entry cannot run; moving it to the dead letters')
      this.#host.complete({ workerId: this.#workerId, entryId, outcome: 'dead', envelope: reason })
      notify(this.#s.metrics, 'deadLettered', this.#s.pool, 1)
    }
  }

  /** Takes the entries read ahead and not started. */
  takeBacklog(): JobEntry[] {
    const taken = this.#backlog
    this.#backlog = []
    return taken
  }

  /** Puts entries back at the head of the backlog, oldest first. */
  restoreBacklog(entries: readonly JobEntry[]): void {
    if (entries.length === 0) return
    this.#backlog.unshift(...entries)
    this.fill()
    this.wake()
  }

  /** Stops a copy: a running one is aborted, one read ahead is released unrun; its slot is free at once. */
  cancel(entryId: string, reason: string): void {
    const job = this.#running.get(entryId)
    if (job === undefined) {
      const i = this.#backlog.findIndex((e) => e.entryId === entryId)
      if (i >= 0) this.#complete(this.#backlog.splice(i, 1)[0] as JobEntry, SKIP)
      return
    }
    job.ctrl.abort(abortError(`cancelled: ${reason}`))
    job.finish(SKIP)
  }

  /**
   * Starts nothing more and aborts the running jobs, not completing them: their entries stay
   * pending, and once the worker's lease runs out a live worker's rescue runs them again (or this
   * worker, restarted with the same id, does). Their slots are free at once, whatever the handlers
   * do with the signal.
   */
  stop(reason: string): void {
    this.#isStopped = true
    for (const job of [...this.#running.values()]) {
      job.ctrl.abort(abortError(reason))
      job.finish(undefined)
    }
    this.wake()
  }

  /** Resolves at the next change. */
  changed(): Promise<void> {
    return new Promise((resolve) => {
      this.#waiter = resolve
    })
  }

  wake(): void {
    const waiter = this.#waiter
    this.#waiter = undefined
    waiter?.()
  }

  /** Starts backlog entries while slots are free; racing copies are claimed first. */
  fill(): void {
    let toClaim: JobEntry[] | undefined
    while (
      !this.#isStopped &&
      this.#backlog.length > 0 &&
      this.#running.size + this.#claiming.size < this.#s.concurrency
    ) {
      const entry = this.#backlog.shift() as JobEntry
      if (entry.race === '') {
        this.#start(entry)
      } else {
        toClaim ??= []
        toClaim.push(entry)
        this.#claiming.add(entry.entryId)
      }
    }
    if (toClaim !== undefined) void this.#claimThenStart(toClaim)
  }

  /** Copies whose job another copy already won (or claimed, when tied) are released unrun. */
  async #claimThenStart(entries: JobEntry[]): Promise<void> {
    let verdicts: ClaimVerdict[] = []
    try {
      verdicts = await this.#host.claim(this.#workerId, entries)
    } catch (err) {
      // Unclaimed entries stay pending for this worker in Redis; the loop reads them again.
      this.#logger.warn({ err, entries: entries.length }, 'claiming racing copies failed; reading them again')
      this.#hasClaimFailed = true
    }
    for (const entry of entries) this.#claiming.delete(entry.entryId)
    for (let i = 0; i < verdicts.length; i++) {
      const entry = entries[i] as JobEntry
      if (verdicts[i] === 'run') {
        if (!this.#isStopped) this.#start(entry)
      } else if (verdicts[i] === 'owns-stream') {
        // Its stream began before this worker restarted: its caller has chunks of it, so it
        // cannot start over. It ends with WORKER_LOST.
        const message = 'the worker restarted after the job had begun its stream'
        this.#complete(
          entry,
          failure(this.#workerId, entry.copy, { code: 'WORKER_LOST', name: 'HedgeyardError', message }),
        )
      } else this.#complete(entry, SKIP)
    }
    this.fill()
    this.wake()
  }

  #start(entry: JobEntry): void {
    const remainingMs = entry.deadline - this.#host.redisNow()
    if (remainingMs <= 0) {
      // Its caller has already been told TIMEOUT: running it would be wasted work.
      this.#complete(entry, SKIP)
      return
    }
    const ctrl = new LazyAbort()
    // When the handler started: for each job's log line at debug, a failure's at warn, and metrics.
    const startedAt = Date.now()
    const tracing = startProcessSpan(this.#s.pool, entry, this.#workerId)
    // No closure unless a span needs one: the handler runs in its span's context.
    const s = this.#s
    const run =
      tracing === undefined
        ? runJob(s.handler, entry, this.#workerId, ctrl, s.stream, runStream)
        : withProcessSpan(tracing, () => runJob(s.handler, entry, this.#workerId, ctrl, s.stream, runStream))
    if (!(run instanceof Promise)) {
      // The handler returned at once: no slot was held across a turn, so no timer or bookkeeping.
      this.#complete(entry, run, startedAt, tracing)
      return
    }
    const job = new RunningJob(this.#owner, entry, ctrl, startedAt, tracing, remainingMs)
    this.#running.set(entry.entryId, job)
    void run.then((result) => job.finish(result))
  }

  /** A running job ended: its slot is free; with a result it is completed, without one left pending. */
  #ended(job: RunningJob, result: JobResult | undefined): void {
    this.#running.delete(job.entry.entryId)
    if (result) this.#complete(job.entry, result, job.startedAt, job.tracing)
    else if (job.tracing !== undefined) endProcessSpan(job.tracing, 'interrupted')
    this.fill()
    this.wake()
  }

  /**
   * Stores a job's result; `startedAt` (ms, this host) is when its handler started, if it ran, and
   * `tracing` its span, ended here with the outcome.
   */
  #complete(entry: JobEntry, result: JobResult, startedAt?: number, tracing?: ProcessTrace): void {
    const code = logJob(this.#logger, entry, result, startedAt)
    const metrics = this.#s.metrics
    if (metrics !== undefined) {
      observeJob(metrics, {
        pool: this.#s.pool,
        workerId: this.#workerId,
        entry,
        outcome: outcomeOf(result, code),
        startedAt,
        clockOffsetMs: this.#host.redisNow() - Date.now(),
      })
    }
    if (tracing !== undefined) endProcessSpan(tracing, outcomeOf(result, code))
    this.#host.complete({
      workerId: this.#workerId,
      entryId: entry.entryId,
      outcome: result.outcome,
      envelope: result.envelope,
    })
  }
}
