import type { Logger } from 'pino'
import { type MetricsSink, notify } from '../observe/metrics-sink.js'
import { endProcessSpan, type ProcessTrace, startProcessSpan, withProcessSpan } from '../observe/tracing.js'
import { decodeEntry, type JobEntry } from '../protocol/codec.js'
import { CONSUMER_GROUP, type PoolKeys, queueKey } from '../protocol/keys.js'
import type { ClaimVerdict } from '../protocol/scripts/claim.js'
import { MAX_TIMER_MS } from '../protocol/validate.js'
import { type Connection, connectReady, createConnection, type RedisInput } from '../redis/connection.js'
import { replyPrefix } from '../redis/redis-failure.js'
import type { Completer } from './completer.js'
import { LazyAbort } from './lazy-abort.js'
import { failure, type Handler, type JobResult, runJob } from './run-job.js'
import { runStream, type StreamLimits } from './stream-job.js'

/** What a worker loop shares with its group. */
export interface LoopShared {
  redis: RedisInput
  keys: PoolKeys
  handler: Handler
  concurrency: number
  /** Entries a worker reads ahead beyond its free slots, to start the moment a slot frees. */
  prefetch: number
  blockMs: number
  maxResultBytes: number
  /** Largest payload run; an entry with a larger one goes to the dead letters. */
  maxPayloadBytes: number
  completer: Completer
  /** Redis time now, in ms (the local clock corrected by the offset the heartbeat measures). */
  redisNow: () => number
  /** Registers the worker again (after Redis lost its keys). */
  reregister: (workerId: string) => Promise<void>
  /** For copies of hedged, tied or streamed jobs: which still need running. */
  claim: (workerId: string, entries: JobEntry[]) => Promise<ClaimVerdict[]>
  /** How streamed jobs write their chunks, and their limits. */
  stream: StreamLimits
  logger: Logger
  /** Told of each job's outcome, run time and queue wait; none when undefined. */
  metrics: MetricsSink | undefined
  pool: string
}

type StreamReply = [string, [string, string[]][]][] | null

interface RunningJob {
  ctrl: LazyAbort
  /** Frees the slot; with a result, completes the job, without one leaves its entry pending. */
  finish: (result: JobResult | undefined) => void
}

/** Extra time a blocking read may take past its BLOCK before the watchdog replaces the connection. */
export const WATCHDOG_MARGIN_MS = 3_000
/** How long a stopping worker waits for its last completions to be stored. */
const COMPLETION_WAIT_MS = 5_000
/** How long a handler may run on after its deadline (its signal aborted) before its slot is freed. */
const ABANDON_GRACE_MS = 1_000

/** A job's outcome for metrics and spans: 'ok', its error code, or 'skipped'. */
function outcomeOf(result: JobResult, code: string | undefined): string {
  return result.outcome === 'ok' ? 'ok' : result.outcome === 'err' ? (code ?? 'HANDLER_ERROR') : 'skipped'
}

function abandoned(workerId: string, copy: number): JobResult {
  return failure(workerId, copy, {
    code: 'TIMEOUT',
    name: 'HedgeyardError',
    message: 'the handler did not finish by the deadline',
  })
}

/**
 * One worker: reads its own stream with XREADGROUP and runs each job with an AbortSignal. It runs
 * at most `concurrency` jobs and holds at most `prefetch` more, read ahead (the backlog): they are
 * queued on this worker anyway, and one read that brings several saves a round trip per job.
 * Its blocking connection is its own.
 */
export class WorkerLoop {
  readonly workerId: string
  readonly #s: LoopShared
  readonly #queue: string
  readonly #logger: Logger
  readonly #running = new Map<string, RunningJob>()
  #conn: Connection
  #clientId: number | undefined
  #isDraining = false
  #isStopped = false
  #slotWaiter: (() => void) | undefined
  /** Entries read and not started yet, oldest first. */
  #backlog: JobEntry[] = []
  /** Entry ids of racing entries taken from the backlog whose claim is under way (they hold a slot). */
  readonly #claiming = new Set<string>()
  /** Set when a claim failed: its entries are still pending in Redis and must be read again. */
  #needsPending = false
  #done: Promise<void> | undefined

  constructor(workerId: string, shared: LoopShared) {
    this.workerId = workerId
    this.#s = shared
    this.#queue = queueKey(shared.keys, workerId)
    this.#logger = shared.logger.child({ workerId })
    this.#conn = this.#connect()
  }

  /** Jobs running now. */
  get inflight(): number {
    return this.#running.size
  }

  /** Starts the loop; the promise settles when the loop has stopped. */
  start(): Promise<void> {
    this.#done ??= this.#loop()
    return this.#done
  }

  /** Stops reading new entries once the stream is empty; resolves when the loop has ended. */
  async drain(cmd: Connection): Promise<void> {
    this.#isDraining = true
    await this.#unblock(cmd)
    this.#wake()
    await this.#done
  }

  /**
   * Takes the entries read ahead and not started, for a drain to hand them to other workers. The
   * worker is out of dispatch by then and its unread entries were handed back, so nothing new
   * comes in; an entry a read still in flight brings is run here.
   */
  takeBacklog(): JobEntry[] {
    const taken = this.#backlog
    this.#backlog = []
    return taken
  }

  /** Puts back, oldest first, entries a drain could not hand back (no live worker had room): they run here. */
  restoreBacklog(entries: JobEntry[]): void {
    if (entries.length === 0) return
    this.#backlog.unshift(...entries)
    this.#fill()
    this.#wake()
  }

  /** Stops at once: aborts running jobs (their entries stay pending and are read again on restart). */
  async stop(cmd: Connection, reason: string): Promise<void> {
    this.#isStopped = true
    // Interrupted jobs are not completed: their entries stay pending, and once this worker's
    // lease runs out a live worker's rescue runs them again (or this worker, restarted with
    // the same id, does). Their slots are free at once, whatever the handlers do with the signal.
    for (const job of [...this.#running.values()]) {
      job.ctrl.abort(new Error(reason))
      job.finish(undefined)
    }
    await this.#unblock(cmd)
    this.#wake()
    await this.#done
    this.#conn.disconnect()
  }

  #connect(): Connection {
    const conn = createConnection(this.#s.redis, 'blocking', `hy:worker:${this.workerId}`)
    conn.on('ready', () => {
      conn.client('ID').then(
        (id) => {
          this.#clientId = Number(id)
        },
        () => {},
      )
    })
    return conn
  }

  /** A blocked XREADGROUP returns at once after CLIENT UNBLOCK, as if its BLOCK had run out. */
  async #unblock(cmd: Connection): Promise<void> {
    if (this.#clientId === undefined) return
    await cmd.client('UNBLOCK', this.#clientId).catch(() => {})
  }

  async #loop(): Promise<void> {
    let failures = 0
    this.#needsPending = true
    while (!this.#isStopped) {
      try {
        await connectReady(this.#conn, 5_000)
        if (this.#needsPending) {
          // Entries read before a restart or a lost reply stay pending for this consumer: run them first.
          this.#needsPending = false
          await this.#readPending()
        }
        this.#fill()
        await this.#waitForRoom()
        if (this.#isStopped) break
        const room = this.#room()
        if (room <= 0) continue
        const entries = await this.#read(room)
        failures = 0
        if (entries.length === 0 && this.#isDraining) {
          if (this.#running.size === 0 && this.#backlog.length === 0 && this.#claiming.size === 0) break
          await this.#waitForChange()
          continue
        }
        for (const entry of entries) this.#backlog.push(entry)
        this.#fill()
      } catch (err) {
        if (this.#isStopped) break
        failures++
        this.#needsPending = true
        const prefix = replyPrefix(err)
        if (prefix === 'NOGROUP' || prefix === 'WRONGTYPE') {
          // Redis lost its data, or another client replaced the stream: register replaces it.
          this.#logger.warn({ prefix }, 'stream or consumer group missing or replaced; registering again')
          await this.#s.reregister(this.workerId).catch(() => {})
        } else if (failures === 1 || failures % 20 === 0) {
          this.#logger.warn({ err, failures }, 'reading jobs failed; retrying')
        }
        await new Promise((r) => setTimeout(r, Math.min(100 * failures, 2_000)))
      }
    }
    // Let the jobs still running finish and their completions be stored (bounded: Redis may be gone).
    while (this.#running.size > 0 || this.#claiming.size > 0) await this.#waitForChange()
    await this.#s.completer.idle(COMPLETION_WAIT_MS)
  }

  /** Entries the next read may bring: free slots plus the read-ahead, less what is held already. */
  #room(): number {
    // A draining worker reads no further ahead than its free slots: what it does not read is
    // handed back to live workers.
    const limit = this.#isDraining ? this.#s.concurrency : this.#s.concurrency + this.#s.prefetch
    return limit - this.#running.size - this.#backlog.length - this.#claiming.size
  }

  async #readPending(): Promise<void> {
    const reply = (await this.#conn.call(
      'XREADGROUP',
      'GROUP',
      CONSUMER_GROUP,
      this.workerId,
      'COUNT',
      this.#s.concurrency * 64,
      'STREAMS',
      this.#queue,
      '0',
    )) as StreamReply
    const fresh = this.#decode(reply).filter(
      (entry) =>
        !this.#running.has(entry.entryId) &&
        !this.#claiming.has(entry.entryId) &&
        !this.#backlog.some((b) => b.entryId === entry.entryId),
    )
    // A racing copy read before a restart may have lost its race since: like every backlog entry,
    // it is claimed when it starts.
    for (const entry of fresh) this.#backlog.push(entry)
  }

  async #read(count: number): Promise<JobEntry[]> {
    const args: (string | number)[] = ['GROUP', CONSUMER_GROUP, this.workerId, 'COUNT', count]
    if (!this.#isDraining) args.push('BLOCK', this.#s.blockMs)
    args.push('STREAMS', this.#queue, '>')
    const read = this.#conn.call('XREADGROUP', ...args) as Promise<StreamReply>
    let timer: NodeJS.Timeout | undefined
    const watchdog = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('watchdog')), this.#s.blockMs + WATCHDOG_MARGIN_MS)
    })
    try {
      return this.#decode(await Promise.race([read, watchdog]))
    } catch (err) {
      if (err instanceof Error && err.message === 'watchdog') {
        // The read outlived its BLOCK: the connection hangs (seen after reconnects). Replace it;
        // whatever it had delivered is pending for this consumer and is read again.
        this.#logger.warn({ blockMs: this.#s.blockMs }, 'blocking read hung; replacing its connection')
        read.catch(() => {})
        this.#conn.disconnect()
        this.#conn = this.#connect()
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  #decode(reply: StreamReply): JobEntry[] {
    const entries: JobEntry[] = []
    for (const [, items] of reply ?? []) {
      for (const [entryId, fields] of items) {
        // A deleted entry still in the pending list comes back with no fields: nothing to run.
        if (fields === null) continue
        const entry = decodeEntry(entryId, fields)
        const reason = 'invalid' in entry ? `invalid entry: ${entry.invalid}` : this.#tooLarge(entry)
        if (reason === undefined) {
          entries.push(entry as JobEntry)
        } else {
          // One bad entry goes to the dead letters with its reason; the others run.
          this.#logger.error({ entryId, reason }, 'entry cannot run; moving it to the dead letters')
          this.#s.completer.complete({ workerId: this.workerId, entryId, outcome: 'dead', envelope: reason })
          notify(this.#s.metrics, 'deadLettered', this.#s.pool, 1)
        }
      }
    }
    return entries
  }

  /** Why an entry's payload is too large to run, or undefined (the producer's limit, enforced here too). */
  #tooLarge(entry: JobEntry): string | undefined {
    const max = this.#s.maxPayloadBytes
    if (entry.payload.length <= max / 3) return undefined
    const bytes = Buffer.byteLength(entry.payload)
    return bytes > max ? `payload of ${bytes} bytes is over the worker's maxPayloadBytes (${max})` : undefined
  }

  /** Copies whose job another copy already won (or claimed, when tied) are released unrun. */
  async #claim(entries: JobEntry[]): Promise<JobEntry[]> {
    const verdicts = await this.#s.claim(this.workerId, entries)
    const kept: JobEntry[] = []
    entries.forEach((entry, i) => {
      const verdict = verdicts[i]
      if (verdict === 'run') kept.push(entry)
      else if (verdict === 'owns-stream') {
        // Its stream began before this worker restarted: its caller has chunks of it, so it
        // cannot start over. It ends with WORKER_LOST.
        this.#complete(
          entry,
          failure(this.workerId, entry.copy, {
            code: 'WORKER_LOST',
            name: 'HedgeyardError',
            message: 'the worker restarted after the job had begun its stream',
          }),
        )
      } else this.#release(entry)
    })
    return kept
  }

  /**
   * Starts backlog entries while slots are free. A racing copy is claimed first, when it is about
   * to start and not when it was read: a tied copy read ahead must not keep its twin, idle on
   * another worker, from starting it.
   */
  #fill(): void {
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

  async #claimThenStart(entries: JobEntry[]): Promise<void> {
    let kept: JobEntry[] = []
    try {
      kept = await this.#claim(entries)
    } catch (err) {
      // Unclaimed entries stay pending for this worker in Redis; the loop reads them again.
      this.#logger.warn({ err, entries: entries.length }, 'claiming racing copies failed; reading them again')
      this.#needsPending = true
    }
    for (const entry of entries) this.#claiming.delete(entry.entryId)
    for (const entry of kept) {
      if (this.#isStopped) break
      this.#start(entry)
    }
    this.#fill()
    this.#wake()
  }

  /** Asks a copy to stop (another copy of its job won, or the job was cancelled); its slot is freed at once. */
  cancel(entryId: string, reason: string): void {
    const job = this.#running.get(entryId)
    if (job === undefined) {
      // Read ahead and not started: released unrun.
      const i = this.#backlog.findIndex((e) => e.entryId === entryId)
      if (i >= 0) this.#release(this.#backlog.splice(i, 1)[0] as JobEntry)
      return
    }
    job.ctrl.abort(new Error(`cancelled: ${reason}`))
    job.finish({ outcome: 'skip', envelope: '' })
  }

  #release(entry: JobEntry): void {
    this.#complete(entry, { outcome: 'skip', envelope: '' })
  }

  #start(entry: JobEntry): void {
    const remainingMs = entry.deadline - this.#s.redisNow()
    if (remainingMs <= 0) {
      // Its caller has already been told TIMEOUT: running it would be wasted work.
      this.#release(entry)
      return
    }
    const ctrl = new LazyAbort()
    const startedAt = this.#s.metrics === undefined ? 0 : Date.now()
    const tracing = startProcessSpan(this.#s.pool, entry, this.workerId)
    const go = () =>
      runJob(this.#s.handler, entry, this.workerId, ctrl, this.#s.maxResultBytes, (it) =>
        runStream(it, entry, this.workerId, ctrl, this.#s.stream),
      )
    const run = tracing === undefined ? go() : withProcessSpan(tracing, go)
    if (!(run instanceof Promise)) {
      // The handler returned at once: no slot was held across a turn, so no timer or bookkeeping.
      this.#complete(entry, run, startedAt, tracing)
      return
    }
    let isFinished = false
    let isPastDeadline = false
    const finish = (result: JobResult | undefined) => {
      if (isFinished) return
      isFinished = true
      // A handler that ends once its deadline aborted it ended after its caller was told TIMEOUT
      // (or is about to be): whatever it returns or throws, its result is TIMEOUT, as for one
      // abandoned past the grace, so that the caller's recovery read cannot find another answer.
      if (isPastDeadline && (result?.outcome === 'err' || result?.outcome === 'ok')) {
        result = abandoned(this.workerId, entry.copy)
      }
      clearTimeout(timer)
      this.#running.delete(entry.entryId)
      if (result) this.#complete(entry, result, startedAt, tracing)
      else if (tracing !== undefined) endProcessSpan(tracing, 'interrupted')
      this.#fill()
      this.#wake()
    }
    this.#running.set(entry.entryId, { ctrl, finish })
    // One timer per running job: at the deadline it aborts the signal; a handler that ignores its
    // signal and hangs must not hold the slot forever, so after a grace period the job is failed
    // and its slot freed (a late return is ignored). A deadline further off than a timer waits (an
    // entry written by another client, or one without a deadline) is waited for in steps of the
    // longest wait; an entry whose deadline is not a number runs without one.
    let timer: NodeJS.Timeout | undefined
    const onDeadline = () => {
      isPastDeadline = true
      ctrl.abort(new Error('deadline exceeded'))
      timer = setTimeout(() => {
        this.#logger.warn({ jobId: entry.jobId }, 'handler still running past the deadline; abandoning it')
        finish(abandoned(this.workerId, entry.copy))
      }, ABANDON_GRACE_MS)
    }
    const arm = (leftMs: number) => {
      timer =
        leftMs > MAX_TIMER_MS
          ? setTimeout(() => arm(entry.deadline - this.#s.redisNow()), MAX_TIMER_MS)
          : setTimeout(onDeadline, leftMs)
    }
    if (!Number.isNaN(remainingMs)) arm(remainingMs)
    void run.then(finish)
  }

  /**
   * Stores a job's result; `startedAt` (ms, this host) is when its handler started, if it ran, and
   * `tracing` its span, ended here with the outcome.
   */
  #complete(entry: JobEntry, result: JobResult, startedAt?: number, tracing?: ProcessTrace): void {
    // What happened to the job, never its payload: a failure at warn (a cooldown at info too), each
    // job at debug.
    const code = result.outcome === 'err' ? this.#logFailure(entry, result.envelope) : undefined
    if (result.outcome !== 'err' && this.#logger.isLevelEnabled('debug')) {
      this.#logger.debug({ jobId: entry.jobId, attempt: entry.attempt, outcome: result.outcome }, 'job done')
    }
    if (this.#s.metrics !== undefined) this.#observe(entry, result, code, startedAt)
    if (tracing !== undefined) endProcessSpan(tracing, outcomeOf(result, code))
    this.#s.completer.complete({
      workerId: this.workerId,
      entryId: entry.entryId,
      outcome: result.outcome,
      envelope: result.envelope,
    })
  }

  /** Tells the metrics sink how the job went, how long it ran and how long it waited in the queue. */
  #observe(
    entry: JobEntry,
    result: JobResult,
    code: string | undefined,
    startedAt: number | undefined,
  ): void {
    const now = Date.now()
    const outcome = outcomeOf(result, code)
    // A stream entry's id starts with the Redis time (ms) it was added at: its dispatch.
    const queuedAt = Number(entry.entryId.slice(0, entry.entryId.indexOf('-')))
    const ranFrom = startedAt ?? now
    const queueSeconds =
      startedAt !== undefined && Number.isFinite(queuedAt) && queuedAt > 0
        ? Math.max(0, ranFrom + (this.#s.redisNow() - now) - queuedAt) / 1000
        : undefined
    notify(
      this.#s.metrics,
      'jobFinished',
      this.#s.pool,
      this.workerId,
      outcome,
      (now - ranFrom) / 1000,
      queueSeconds,
    )
  }

  /** Logs a failed job (never its payload) and returns its error code. */
  #logFailure(entry: JobEntry, envelope: string): string | undefined {
    let error: {
      code?: string
      name?: string
      message?: string
      retryable?: boolean
      retryAfterMs?: number
    } = {}
    try {
      error = (JSON.parse(envelope) as { error?: typeof error }).error ?? {}
    } catch {
      // an envelope this worker made is JSON; nothing to add otherwise
    }
    const { retryAfterMs, ...rest } = error
    this.#logger.warn({ jobId: entry.jobId, attempt: entry.attempt, error: rest }, 'job failed')
    if (retryAfterMs !== undefined) {
      this.#logger.info({ jobId: entry.jobId, retryAfterMs }, 'upstream rate limit: cooling down')
    }
    return typeof error.code === 'string' ? error.code : undefined
  }

  #waitForRoom(): Promise<void> {
    if (this.#room() > 0 || this.#isStopped) return Promise.resolve()
    return this.#waitForChange()
  }

  #waitForChange(): Promise<void> {
    return new Promise((resolve) => {
      this.#slotWaiter = resolve
    })
  }

  #wake(): void {
    const waiter = this.#slotWaiter
    this.#slotWaiter = undefined
    waiter?.()
  }
}
