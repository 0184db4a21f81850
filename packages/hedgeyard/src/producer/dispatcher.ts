import { hostname } from 'node:os'
import { type Logger, pino } from 'pino'
import { checkSink, type MetricsSink, notify, outcomeLabel } from '../observe/metrics-sink.js'
import { reportStats, STATS_REPORT_MS } from '../observe/stats-reporter.js'
import { SubmitTrace } from '../observe/tracing.js'
import { readWorkerMetrics, type WorkerMetrics } from '../observe/worker-metrics.js'
import { HedgeyardError, invalidArgument } from '../protocol/errors.js'
import { jobIdFactory } from '../protocol/job-id.js'
import { inflightKey, type PoolKeys, poolKeys, resultChannel, resumedKey } from '../protocol/keys.js'
import { correctCost } from '../protocol/scripts/correct-cost.js'
import {
  checkInt,
  checkKnownOptions,
  checkMs,
  checkName,
  checkNumber,
  checkOneOf,
} from '../protocol/validate.js'
import { DEFAULT_LIMIT_CLASS, DEFAULT_MAX_ATTEMPTS } from '../protocol/wire.js'
import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  redisFailure,
} from '../redis/connection.js'
import { type AbortTarget, unwatchAbort, watchAbort } from './abort-watch.js'
import { AdaptiveThrottle } from './adaptive-throttle.js'
import { CopyRace, type RaceDeps, type RacePlan } from './copy-race.js'
import { Deadlines } from './deadlines.js'
import { DispatchBatcher } from './dispatch-batcher.js'
import { CANCEL_RESULT_TTL_MS, type CancelOutcome, endJob, outcomeOf } from './end-job.js'
import { HedgeBudget, LatencyTracker } from './hedge-budget.js'
import { type JobState, readJobState } from './job-state.js'
import type { JobStream } from './job-stream.js'
import {
  abortedError,
  isPlainSubmit,
  type PlainDeps,
  PlainSubmit,
  plainSubmitPromise,
  RECOVERY_WAIT_MS,
} from './plain-submit.js'
import { ResultListener } from './result-listener.js'
import { SaturationWaits } from './saturation-waits.js'
import { StreamPushes } from './stream-pushes.js'
import { StreamReader } from './stream-reader.js'
import { resumeStream, type StreamDeps, startStream } from './streams.js'
import {
  type CheckedSubmit,
  checkSubmitOptions,
  REDIS_UNAVAILABLE_CHOICES,
  type SubmitDefaults,
  type SubmitOptions,
} from './submit-options.js'
import { TenantWaits } from './tenant-waits.js'

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** A Redis URL, or an ioredis client whose settings the dispatcher's own connections copy. */
  redis: RedisInput
  /** The pool's name: letters, digits and `_ . : -`. */
  pool: string
  /** @defaultValue 'hy' */
  prefix?: string
  /** How long a session stays bound to its worker after its last request. @defaultValue 30000 */
  affinityTtlMs?: number
  /**
   * How long a result is kept in Redis for recovery. Unset, the job's worker keeps it for the
   * workers' `resultTtlMs` (60000 by default), and the job's entry carries no `ttl` field.
   */
  resultTtlMs?: number
  /** Default time limit of a submit. @defaultValue 30000 */
  timeoutMs?: number
  /** Largest request, as JSON in UTF-8. @defaultValue 1048576 */
  maxPayloadBytes?: number
  /** How long to wait for Redis when connecting. @defaultValue 5000 */
  connectTimeoutMs?: number
  /** Default of {@link SubmitOptions.maxAttempts}. @defaultValue 3 */
  maxAttempts?: number
  /**
   * Default of {@link SubmitOptions.onRedisUnavailable}: while Redis cannot be reached, submits wait
   * for it (up to their timeout) or fail at once with REDIS_UNAVAILABLE. @defaultValue 'wait'
   */
  onRedisUnavailable?: 'wait' | 'reject'
  /** Hedging and retries: their budget and the `'auto'` delay. */
  hedging?: HedgingOptions
  /**
   * Adaptive throttling (Google SRE book): refuse requests locally, with THROTTLED, with probability
   * max(0, (requests - k * accepts) / (requests + 1)) over the last `windowMs`, once the window holds
   * `minRequests`; `false` turns it off. @defaultValue { k: 2, windowMs: 120000, minRequests: 20 }
   */
  throttle?: ThrottleOptions | false
  /** A pino logger; silent by default. Payloads are never logged. */
  logger?: Logger
  /**
   * Where to report submits, their durations and the counters (e.g. `prometheusMetrics()` from
   * `hedgeyard/prometheus`); none by default.
   */
  metrics?: MetricsSink
}

/** Options of {@link Dispatcher.resume}. */
export interface ResumeOptions {
  /** Continue after this chunk: 0 (the default) gives the whole stream. */
  after?: number
  /** How long to follow the stream before giving up with TIMEOUT (the job goes on). @defaultValue the dispatcher's timeoutMs */
  timeoutMs?: number
  /** Aborting it, like leaving the loop early, cancels the job everywhere. */
  signal?: AbortSignal
}

/** BLOCK of the one read that follows every open stream of a dispatcher. */
const STREAM_BLOCK_MS = 5_000

/** Defaults of {@link DispatcherOptions}. */
export const DISPATCHER_DEFAULTS = Object.freeze({
  prefix: 'hy',
  affinityTtlMs: 30_000,
  timeoutMs: 30_000,
  maxPayloadBytes: 1_048_576,
  connectTimeoutMs: 5_000,
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  onRedisUnavailable: 'wait' as 'wait' | 'reject',
  hedging: Object.freeze({
    budgetRatio: 0.1,
    budgetBurst: 10,
    percentile: 0.95,
    minSamples: 50,
    minDelayMs: 1,
    fallbackDelayMs: 50,
  }),
})

/** Adaptive throttling of a {@link Dispatcher}. */
export interface ThrottleOptions {
  /** Requests allowed per accepted one before shedding starts; higher sheds later. @defaultValue 2 */
  k?: number
  /** The window requests and accepts are counted over. @defaultValue 120000 */
  windowMs?: number
  /** Requests the window must hold before anything is shed. @defaultValue 20 */
  minRequests?: number
}

const THROTTLE_DEFAULTS = Object.freeze({ k: 2, windowMs: 120_000, minRequests: 20 })

/**
 * Outcomes that say the upstream could not take the request, for the throttle: the rest are
 * accepts. A full pool (SATURATED, NO_WORKERS) is answered by one script call already, and
 * `onSaturated` says what to do about it: it counts as an accept, not as an outage.
 */
const OVERLOAD_CODES = new Set(['TIMEOUT', 'RATE_LIMITED', 'THROTTLED'])

/** Hedging and retry settings of a {@link Dispatcher}. */
export interface HedgingOptions {
  /** Extra copies (hedges and retries) as a share of submits, at most. @defaultValue 0.1 */
  budgetRatio?: number
  /** Extra copies that may be sent in a burst before the ratio applies. @defaultValue 10 */
  budgetBurst?: number
  /** The percentile of recent latencies an `'auto'` delay uses. @defaultValue 0.95 */
  percentile?: number
  /** Latencies needed before `'auto'` trusts them. @defaultValue 50 */
  minSamples?: number
  /** The `'auto'` delay never goes below this. @defaultValue 1 */
  minDelayMs?: number
  /** The `'auto'` delay until there are enough samples. @defaultValue 50 */
  fallbackDelayMs?: number
}

/** Counters of one dispatcher since it was created. */
export interface DispatcherStats {
  submitted: number
  succeeded: number
  failed: number
  /** Submits with a session whose binding was used. */
  affinityHits: number
  /** Submits with a session that were bound (or rebound) to a worker. */
  affinityMisses: number
  /** Dispatch attempts that found every worker full. */
  saturated: number
  /** Dispatch attempts the pool's quota held back (each waited, or failed with RATE_LIMITED). */
  rateLimited: number
  /** Hedge copies sent after the delay. */
  hedgesSent: number
  /** Hedged submits won by a copy other than the first. */
  hedgesWon: number
  /** Copies still out when another copy won (removed from their streams, or cancelled). */
  hedgesCancelled: number
  /** Hedges and retries not sent because the budget was spent. */
  hedgesDenied: number
  /** Requests refused here by the adaptive throttle (THROTTLED). */
  throttled: number
  /** Copies sent after a retryable failure. */
  retriesSent: number
  /** The delay an `'auto'` hedge would use now. */
  autoDelayMs: number
}

const KNOWN_OPTIONS = [
  'redis',
  'pool',
  'logger',
  'resultTtlMs',
  'throttle',
  'metrics',
  ...Object.keys(DISPATCHER_DEFAULTS),
]
const nextId = jobIdFactory()
const NO_OPTIONS: SubmitOptions = Object.freeze({})

/**
 * The producer side: sends requests to the least-loaded worker of a pool and awaits their
 * results. One dispatcher per process and pool is enough; it batches the submits of each event
 * loop turn into one Redis call.
 */
export class Dispatcher<Req = unknown, Res = unknown> {
  readonly pool: string
  readonly producerId: string
  readonly #options: Required<
    Omit<DispatcherOptions, 'redis' | 'pool' | 'logger' | 'hedging' | 'resultTtlMs' | 'throttle' | 'metrics'>
  > & {
    resultTtlMs: number | undefined
    hedging: Required<HedgingOptions>
  }
  readonly #budget: HedgeBudget
  readonly #throttle: AdaptiveThrottle | undefined
  readonly #latency: LatencyTracker
  readonly #keys: PoolKeys
  readonly #logger: Logger
  readonly #metrics: MetricsSink | undefined
  readonly #cmd: Connection
  readonly #sub: Connection
  readonly #batcher: DispatchBatcher
  readonly #results: ResultListener
  readonly #raceDeps: RaceDeps
  readonly #plainDeps: PlainDeps
  /** Every submit's deadline, on one timer. */
  readonly #deadlines = new Deadlines({ isHoldingProcess: true })
  readonly #submitDefaults: SubmitDefaults
  /** The checked options of a submit that gives none. */
  readonly #defaultSubmit: CheckedSubmit
  #pending = 0
  #idleWaiters: (() => void)[] = []
  #isConnected = false
  readonly #stats: DispatcherStats = {
    submitted: 0,
    succeeded: 0,
    failed: 0,
    affinityHits: 0,
    affinityMisses: 0,
    saturated: 0,
    rateLimited: 0,
    hedgesSent: 0,
    hedgesWon: 0,
    hedgesCancelled: 0,
    hedgesDenied: 0,
    throttled: 0,
    retriesSent: 0,
    autoDelayMs: 0,
  }
  #ready: Promise<void> | undefined
  #reader: StreamReader | undefined
  readonly #pushes: StreamPushes
  readonly #streamDeps: StreamDeps
  #reporter: NodeJS.Timeout | undefined
  #isClosed = false

  /** @throws HedgeyardError INVALID_ARGUMENT when an option is out of range. */
  constructor(options: DispatcherOptions) {
    checkKnownOptions('Dispatcher', options, KNOWN_OPTIONS)
    if (options.redis === undefined) throw invalidArgument('redis is required: a URL or an ioredis client')
    this.pool = checkName('pool', options.pool)
    this.#metrics = checkSink(options.metrics)
    const merged = { ...DISPATCHER_DEFAULTS, ...stripUndefined(options) }
    this.#options = {
      prefix: checkName('prefix', merged.prefix),
      affinityTtlMs: checkInt('affinityTtlMs', merged.affinityTtlMs, 1),
      resultTtlMs:
        options.resultTtlMs === undefined ? undefined : checkInt('resultTtlMs', options.resultTtlMs, 1),
      timeoutMs: checkMs('timeoutMs', merged.timeoutMs, 1),
      maxPayloadBytes: checkInt('maxPayloadBytes', merged.maxPayloadBytes, 1, 512 * 1024 * 1024),
      connectTimeoutMs: checkMs('connectTimeoutMs', merged.connectTimeoutMs, 1),
      maxAttempts: checkInt('maxAttempts', merged.maxAttempts, 1, 100),
      onRedisUnavailable: checkOneOf(
        'onRedisUnavailable',
        merged.onRedisUnavailable,
        REDIS_UNAVAILABLE_CHOICES,
      ),
      hedging: checkHedging(options.hedging ?? {}),
    }
    this.#submitDefaults = {
      timeoutMs: this.#options.timeoutMs,
      maxAttempts: this.#options.maxAttempts,
      hedgeDelayMs: 'auto',
      onRedisUnavailable: this.#options.onRedisUnavailable,
    }
    this.#defaultSubmit = Object.freeze(checkSubmitOptions(NO_OPTIONS, this.#submitDefaults))
    this.#throttle = checkThrottle(options.throttle)
    this.#budget = new HedgeBudget(this.#options.hedging.budgetRatio, this.#options.hedging.budgetBurst)
    this.#latency = new LatencyTracker(this.#options.hedging.percentile)
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({
      component: 'dispatcher',
      pool: this.pool,
    })
    this.#keys = poolKeys(this.#options.prefix, this.pool)
    this.producerId = `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${nextId().slice(-8)}`
    this.#cmd = createConnection(options.redis, 'command', `hy:producer:${this.producerId}`)
    this.#sub = createConnection(
      options.redis,
      'subscriber',
      `hy:results:${this.producerId}`,
      this.#keys.base,
    )
    this.#batcher = new DispatchBatcher(
      this.#cmd,
      this.#keys,
      this.producerId,
      this.#options.affinityTtlMs,
      this.#options.resultTtlMs,
      this.#logger,
    )
    this.#results = new ResultListener(
      this.#sub,
      this.#cmd,
      this.#keys,
      resultChannel(this.#keys, this.producerId),
      this.#logger,
    )
    const tenants = new TenantWaits()
    const saturation = new SaturationWaits()
    // Each result line heard is a job of this producer ended: a slot is free for one that waits.
    this.#results.onFreed = (count) => saturation.freed(count)
    this.#raceDeps = {
      pool: this.pool,
      batcher: this.#batcher,
      budget: this.#budget,
      counters: this.#stats,
      tenants,
      saturation,
      costReported: (plan, units) => {
        const delta = units - plan.cost
        if (delta === 0) return
        const tenant =
          plan.limitKey === undefined
            ? undefined
            : { limitKey: plan.limitKey, limitClass: plan.limitClass ?? DEFAULT_LIMIT_CLASS }
        correctCost(this.#cmd, this.#keys, delta, tenant).catch((err: unknown) =>
          this.#logger.debug({ err, jobId: plan.jobId }, 'could not correct the cost budget'),
        )
      },
      releaseSlot: (limitKey, jobId) => {
        // Its deadline frees the slot if this fails; the tenant's next request tries either way.
        this.#cmd
          .zrem(inflightKey(this.#keys, limitKey), jobId)
          .catch((err: unknown) => this.#logger.debug({ err, jobId }, 'could not free a tenant slot'))
          .finally(() => tenants.freed(limitKey))
      },
    }
    this.#plainDeps = {
      pool: this.pool,
      batcher: this.#batcher,
      results: this.#results,
      deadlines: this.#deadlines,
      race: this.#raceDeps,
      settled: (job, err, value) => {
        const now = Date.now()
        const elapsedMs = now - (job.startedAt as number)
        if (err === undefined) this.#latency.record(elapsedMs)
        this.#settled(err, value, job.resolve, job.reject, now, elapsedMs)
      },
      stopAborted: (jobId, workers) => this.#stopAborted(jobId, workers),
    }
    const reader = () => {
      this.#reader ??= new StreamReader(
        options.redis,
        this.#cmd,
        `hy:streams:${this.producerId}`,
        this.#keys.base,
        STREAM_BLOCK_MS,
        this.#logger,
      )
      return this.#reader
    }
    this.#pushes = new StreamPushes(reader, this.#logger)
    this.#results.setPushes(this.#pushes)
    this.#streamDeps = {
      keys: this.#keys,
      cmd: this.#cmd,
      results: this.#results,
      race: this.#raceDeps,
      pushes: this.#pushes,
      reader,
      deadlines: new Deadlines(),
      endTtlMs: this.#options.resultTtlMs ?? CANCEL_RESULT_TTL_MS,
      logger: this.#logger,
      settled: (err) => this.#settled(err, undefined, noop, noop),
    }
    this.#reporter = setInterval(() => void this.#report(), STATS_REPORT_MS)
    this.#reporter.unref()
    notify(this.#metrics, 'producerOpened', this.pool, this.producerId, () => this.stats())
  }

  /**
   * Writes the counters, and the p50 and p99 of the last successful submits, to Redis for
   * `hedgeyard inspect` and `top`; a failure only skips one report.
   */
  async #report(): Promise<void> {
    if (this.#ready === undefined || this.#cmd.status !== 'ready') return
    const latency = this.#latency.quantiles()
    const report = { ...this.stats(), latencyP50Ms: latency?.p50 ?? -1, latencyP99Ms: latency?.p99 ?? -1 }
    await reportStats(this.#cmd, this.#keys, this.producerId, report).catch((err: unknown) => {
      this.#logger.debug({ err }, 'could not report counters')
    })
  }

  /**
   * Sends `req` to a worker and resolves with the handler's result.
   * @throws HedgeyardError SATURATED, NO_WORKERS, TIMEOUT, ABORTED, HANDLER_ERROR, PAYLOAD_TOO_LARGE,
   * INVALID_ARGUMENT, CLOSED or REDIS_UNAVAILABLE (Redis still unreachable at the deadline; at once
   * with onRedisUnavailable 'reject').
   */
  submit(req: Req, options: SubmitOptions = NO_OPTIONS): Promise<Res> {
    this.#stats.submitted++
    let checked: CheckedSubmit
    let payload: string
    try {
      if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
      checked =
        options === NO_OPTIONS ? this.#defaultSubmit : checkSubmitOptions(options, this.#submitDefaults)
      payload = this.#encode(req)
      if (options.signal?.aborted) throw abortedError(options.signal)
      this.#shedIfThrottled()
    } catch (err) {
      this.#stats.failed++
      return Promise.reject(err)
    }
    this.#budget.earn()
    this.#pending++
    // Each path in a method of its own: a closure here over the locals would give every submit
    // a context object to hold them.
    if (isPlainSubmit(checked)) return this.#submitPlain(checked, payload, options.signal)
    return this.#submitRacing(checked, payload, options.signal)
  }

  #submitPlain(checked: CheckedSubmit, payload: string, signal: AbortSignal | undefined): Promise<Res> {
    const job = new PlainSubmit(this.#plainDeps, checked, payload, signal)
    const promise = plainSubmitPromise<Res>(job)
    if (this.#isConnected) job.start(nextId())
    else this.#startWhenConnected(job)
    return promise
  }

  #startWhenConnected(job: PlainSubmit): void {
    this.#connect().then(
      () => job.start(nextId()),
      (err: unknown) => this.#settled(err, undefined, job.resolve, job.reject),
    )
  }

  #submitRacing(checked: CheckedSubmit, payload: string, signal: AbortSignal | undefined): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      const run = () => this.#start(checked, payload, signal, resolve, reject)
      if (this.#isConnected) run()
      else this.#connect().then(run, (err: unknown) => this.#settled(err, undefined, resolve, reject))
    })
  }

  /**
   * Sends `req` to a worker whose handler streams (an async generator) and returns the job's
   * chunks as they come: `for await (const { seq, data } of stream)`, then `await stream.result`
   * for the handler's return value. Leaving the loop early or aborting `options.signal` cancels the
   * job everywhere. With `hedge`, copies race to the first chunk: the first copy to emit owns the
   * job and the others are stopped. Iteration throws the job's error: SATURATED, NO_WORKERS,
   * TIMEOUT (the whole stream must end within the timeout), ABORTED, CANCELLED, HANDLER_ERROR,
   * STREAM_OVERFLOW, WORKER_LOST, DEAD_LETTERED or REDIS_*.
   * @throws HedgeyardError INVALID_ARGUMENT, PAYLOAD_TOO_LARGE or CLOSED, at once.
   */
  stream<Chunk = unknown, R = Res>(req: Req, options: SubmitOptions = NO_OPTIONS): JobStream<Chunk, R> {
    if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
    const checked = checkSubmitOptions(options, this.#submitDefaults)
    if (checked.hedge?.mode === 'tied') {
      throw invalidArgument(
        "hedge.mode 'tied' is not for streams: copies of a stream race to the first chunk",
      )
    }
    const payload = this.#encode(req)
    this.#stats.submitted++
    this.#pending++
    const plan = this.#racePlan(nextId(), checked, payload, Date.now() + checked.timeoutMs)
    const tracing = SubmitTrace.start(this.pool, plan.jobId)
    if (tracing !== undefined) plan.trace = tracing
    let ready = this.#connect()
    try {
      this.#shedIfThrottled()
    } catch (err) {
      ready = Promise.reject(err)
    }
    return startStream<Chunk, R>(this.#streamDeps, plan, checked.timeoutMs, options.signal, ready)
  }

  /**
   * Follows a streamed job from any process on any host, by its id: its chunks after
   * `options.after` (a sequence number, as an HTTP `Last-Event-ID`), then its end. A job that ended
   * without a stream gives its result and no chunks. Leaving the loop early cancels the job.
   * Iteration throws NOT_FOUND for a job the pool does not know (or no longer keeps), TIMEOUT after
   * `options.timeoutMs` (the job goes on), and the job's own error.
   * @throws HedgeyardError INVALID_ARGUMENT or CLOSED, at once.
   */
  resume<Chunk = unknown, R = Res>(jobId: string, options: ResumeOptions = {}): JobStream<Chunk, R> {
    if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
    checkKnownOptions('resume', options, ['after', 'timeoutMs', 'signal'])
    checkName('jobId', jobId)
    const after = options.after === undefined ? 0 : checkInt('after', options.after, 0)
    const timeoutMs =
      options.timeoutMs === undefined ? this.#options.timeoutMs : checkMs('timeoutMs', options.timeoutMs, 1)
    this.#pending++
    return resumeStream<Chunk, R>(this.#streamDeps, jobId, after, timeoutMs, options.signal, this.#connect())
  }

  /**
   * Cancels a job of this pool by id, whichever producer sent it: see {@link cancelJob}.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async cancel(jobId: string): Promise<CancelOutcome> {
    return this.#aboutJob('cancel', jobId, async () => {
      const end = {
        code: 'CANCELLED',
        message: 'the job was cancelled',
        resultTtlMs: this.#streamDeps.endTtlMs,
      }
      return outcomeOf(await endJob(this.#cmd, this.#keys, jobId, end))
    })
  }

  /** Checks a job id, connects, runs `read`, and turns a Redis failure into a HedgeyardError. */
  async #aboutJob<T>(what: string, jobId: string, read: () => Promise<T>): Promise<T> {
    checkName('jobId', jobId)
    await this.#connect()
    try {
      return await read()
    } catch (err) {
      throw redisFailure(err, what)
    }
  }

  /**
   * How many times a job's stream has been resumed (by `resume`, in any process). A front door
   * whose client left reads it when the stream starts and again after a grace period: if it grew,
   * the client came back elsewhere, and the job must not be cancelled.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async resumes(jobId: string): Promise<number> {
    return this.#aboutJob('resumes', jobId, async () =>
      Number((await this.#cmd.get(resumedKey(this.#keys, jobId))) ?? 0),
    )
  }

  /**
   * Where a job of this pool stands, whichever producer sent it: see {@link getJob}.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async getJob(jobId: string): Promise<JobState> {
    return this.#aboutJob('getJob', jobId, () => readJobState(this.#cmd, this.#keys, jobId))
  }

  /** The metrics of every worker of the pool, read from Redis. */
  async workerMetrics(): Promise<WorkerMetrics[]> {
    await this.#connect()
    try {
      return await readWorkerMetrics(this.#cmd, this.#keys)
    } catch (err) {
      throw redisFailure(err, 'workerMetrics')
    }
  }

  /** Counters since this dispatcher was created. */
  stats(): DispatcherStats {
    return { ...this.#stats, autoDelayMs: this.#autoDelayMs() }
  }

  /** Stops taking submits, lets the ones under way settle (each within its timeout), then disconnects. */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    if (this.#pending > 0) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve))
    clearInterval(this.#reporter)
    this.#pushes.close()
    await this.#reader?.close()
    if (this.#ready !== undefined) await this.#report()
    this.#cmd.disconnect()
    this.#sub.disconnect()
    notify(this.#metrics, 'producerClosed', this.pool, this.producerId, this.stats())
  }

  /** @throws HedgeyardError THROTTLED when the adaptive throttle sheds this request. */
  #shedIfThrottled(): void {
    if (this.#throttle === undefined || !this.#throttle.shouldShed(Date.now())) return
    this.#stats.throttled++
    const p = Math.round(this.#throttle.rejectProbability(Date.now()) * 100)
    throw new HedgeyardError(
      'THROTTLED',
      `refused here: the pool has been refusing most recent requests (${p}% are shed until it accepts again)`,
      { isRetryable: true },
    )
  }

  #settled(
    err: unknown,
    value: unknown,
    resolve: (value: Res) => void,
    reject: (err: unknown) => void,
    now = Date.now(),
    elapsedMs?: number,
  ): void {
    this.#throttle?.record(now, !isOverload(err))
    if (this.#metrics !== undefined) {
      const seconds = elapsedMs === undefined ? undefined : elapsedMs / 1000
      notify(this.#metrics, 'submitSettled', this.pool, outcomeLabel(err), seconds)
    }
    if (err === undefined) {
      this.#stats.succeeded++
      resolve(value as Res)
    } else {
      this.#stats.failed++
      reject(err)
    }
    if (--this.#pending === 0 && this.#idleWaiters.length > 0) {
      for (const wake of this.#idleWaiters.splice(0)) wake()
    }
  }

  #start(
    checked: CheckedSubmit,
    payload: string,
    signal: AbortSignal | undefined,
    resolve: (value: Res) => void,
    reject: (err: unknown) => void,
  ): void {
    const startedAt = Date.now()
    const deadline = startedAt + checked.timeoutMs
    const jobId = nextId()
    let isSettled = false
    const settle = (err: unknown, value?: unknown) => {
      if (isSettled) return
      isSettled = true
      this.#deadlines.cancel(deadlineEntry)
      race.stop()
      if (signal && onAbort) unwatchAbort(signal, onAbort)
      this.#results.forget(jobId)
      const now = Date.now()
      if (err === undefined) this.#latency.record(now - startedAt)
      tracing?.end(err === undefined ? undefined : outcomeLabel(err), (err as Error | undefined)?.message)
      this.#settled(err, value, resolve, reject, now, now - startedAt)
    }
    const plan = this.#racePlan(jobId, checked, payload, deadline)
    const tracing = SubmitTrace.start(this.pool, jobId)
    if (tracing !== undefined) plan.trace = tracing
    const race = new CopyRace(this.#raceDeps, plan, settle)
    // Before TIMEOUT, one read of the job's result, as a plain submit's (PlainSubmit.fire).
    const deadlineEntry = this.#deadlines.add(deadline, () => {
      const refused = race.refusalWaitedOut
      if (refused !== undefined) {
        settle(refused)
        return
      }
      const timedOut = () =>
        settle(new HedgeyardError('TIMEOUT', `no result within ${checked.timeoutMs} ms`, { jobId }))
      setTimeout(timedOut, RECOVERY_WAIT_MS).unref()
      this.#results.recoverJobs([jobId]).then(timedOut, timedOut)
    })
    let onAbort: AbortTarget | undefined
    if (signal) {
      // Aborted while it waited for a connection: it ends before it is sent.
      if (signal.aborted) {
        settle(abortedError(signal))
        return
      }
      onAbort = {
        handleEvent: () => {
          settle(abortedError(signal))
          this.#stopAborted(jobId, race.workers)
        },
      }
      watchAbort(signal, onAbort)
    }
    // Listen before dispatching: a fast worker can answer before the dispatch reply arrives.
    this.#results.expect(jobId, race, race.isRacing ? () => race.attemptsSent : undefined)
    race.start()
  }

  /** A submit its caller aborted: its job stops where it is (unread: removed; running: aborted). */
  #stopAborted(jobId: string, workers: readonly string[] | undefined): void {
    const end = { code: 'ABORTED', message: 'the submit was aborted', resultTtlMs: this.#streamDeps.endTtlMs }
    endJob(this.#cmd, this.#keys, jobId, end, workers).catch((err: unknown) => {
      this.#logger.debug({ err, jobId }, 'could not stop an aborted job')
    })
  }

  /** How one submit's or stream's copies are run, from its checked options. */
  #racePlan(jobId: string, checked: CheckedSubmit, payload: string, deadline: number): RacePlan {
    const plan: RacePlan = {
      jobId,
      session: checked.session,
      payload,
      deadline,
      maxAttempts: checked.maxAttempts,
      onSaturated: checked.onSaturated,
      cost: checked.cost,
      onRateLimited: checked.onRateLimited,
      onRedisUnavailable: checked.onRedisUnavailable,
    }
    if (checked.limitKey !== undefined) {
      plan.limitKey = checked.limitKey
      plan.limitClass = checked.limitClass
    }
    if (checked.hedge) {
      plan.hedge = {
        delayMs: checked.hedge.delayMs === 'auto' ? this.#autoDelayMs() : checked.hedge.delayMs,
        maxCopies: checked.hedge.maxAttempts,
        isTied: checked.hedge.mode === 'tied',
      }
    }
    if (checked.retry)
      plan.retry = { maxCopies: checked.retry.maxAttempts, backoffMs: checked.retry.backoffMs }
    return plan
  }

  /** The current `'auto'` hedge delay: a high percentile of recent latencies, or the fallback. */
  #autoDelayMs(): number {
    const h = this.#options.hedging
    const observed = this.#latency.count >= h.minSamples ? this.#latency.value() : undefined
    return Math.max(h.minDelayMs, Math.round(observed ?? h.fallbackDelayMs))
  }

  #encode(req: Req): string {
    let payload: string | undefined
    try {
      payload = JSON.stringify(req)
    } catch (err) {
      throw new HedgeyardError(
        'INVALID_ARGUMENT',
        `request is not JSON-serialisable: ${(err as Error).message}`,
        {
          cause: err,
        },
      )
    }
    if (payload === undefined) {
      throw invalidArgument(`request is not JSON-serialisable (got ${typeof req})`)
    }
    const max = this.#options.maxPayloadBytes
    if (payload.length > max / 3 && Buffer.byteLength(payload) > max) {
      throw new HedgeyardError(
        'PAYLOAD_TOO_LARGE',
        `request is ${Buffer.byteLength(payload)} bytes as JSON; maxPayloadBytes is ${max}`,
      )
    }
    return payload
  }

  #connect(): Promise<void> {
    if (this.#ready === undefined) {
      const timeoutMs = this.#options.connectTimeoutMs
      this.#ready = Promise.all([connectReady(this.#cmd, timeoutMs), this.#results.start(timeoutMs)]).then(
        () => {
          this.#isConnected = true
        },
      )
      // A failed first connection is retried by the next call rather than cached forever.
      this.#ready.catch(() => {
        this.#ready = undefined
      })
    }
    return this.#ready
  }
}

function checkHedging(h: HedgingOptions): Required<HedgingOptions> {
  checkKnownOptions('hedging', h, Object.keys(DISPATCHER_DEFAULTS.hedging))
  const m = { ...DISPATCHER_DEFAULTS.hedging, ...stripUndefined(h) }
  return {
    budgetRatio: checkNumber('hedging.budgetRatio', m.budgetRatio, 0, 1),
    budgetBurst: checkInt('hedging.budgetBurst', m.budgetBurst, 1),
    percentile: checkNumber('hedging.percentile', m.percentile, 0.5, 1),
    minSamples: checkInt('hedging.minSamples', m.minSamples, 1),
    minDelayMs: checkMs('hedging.minDelayMs', m.minDelayMs, 0),
    fallbackDelayMs: checkMs('hedging.fallbackDelayMs', m.fallbackDelayMs, 0),
  }
}

function noop(): void {}

/** Whether a submit's outcome says the pool could not take it (not an accept, for the throttle). */
function isOverload(err: unknown): boolean {
  if (!(err instanceof HedgeyardError)) return false
  return OVERLOAD_CODES.has(err.code) || (err.code === 'HANDLER_ERROR' && err.isRetryable)
}

function checkThrottle(t: ThrottleOptions | false | undefined): AdaptiveThrottle | undefined {
  if (t === false) return undefined
  if (t !== undefined && (typeof t !== 'object' || t === null)) {
    throw invalidArgument('throttle must be an object { k, windowMs, minRequests } or false')
  }
  checkKnownOptions('throttle', t ?? {}, Object.keys(THROTTLE_DEFAULTS))
  const m = { ...THROTTLE_DEFAULTS, ...stripUndefined(t ?? {}) }
  return new AdaptiveThrottle(
    checkNumber('throttle.k', m.k, 1, 1_000),
    checkMs('throttle.windowMs', m.windowMs, 1_000),
    checkInt('throttle.minRequests', m.minRequests, 1),
  )
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>
}
