import { hostname } from 'node:os'
import { type Logger, pino } from 'pino'
import { monotonicFactory } from 'ulid'
import { envelopeError } from '../protocol/codec.js'
import { invalidArgument, SwitchyardError } from '../protocol/errors.js'
import { type PoolKeys, poolKeys, resultChannel } from '../protocol/keys.js'
import { checkInt, checkKnownOptions, checkName, checkOneOf, checkSession } from '../protocol/validate.js'
import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  redisFailure,
} from '../redis/connection.js'
import { DispatchBatcher, type DispatchOutcome } from './dispatch-batcher.js'
import { ResultListener } from './result-listener.js'
import { readWorkerMetrics, type WorkerMetrics } from './worker-metrics.js'

/** Options of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** A Redis URL, or an ioredis client whose settings the dispatcher's own connections copy. */
  redis: RedisInput
  /** The pool's name: letters, digits and `_ . : -`. */
  pool: string
  /** @defaultValue 'sy' */
  prefix?: string
  /** How long a session stays bound to its worker after its last request. @defaultValue 30000 */
  affinityTtlMs?: number
  /** How long a result is kept in Redis for recovery. @defaultValue 60000 */
  resultTtlMs?: number
  /** Default time limit of a submit. @defaultValue 30000 */
  timeoutMs?: number
  /** Largest request, as JSON in UTF-8. @defaultValue 1048576 */
  maxPayloadBytes?: number
  /** How long to wait for Redis when connecting. @defaultValue 5000 */
  connectTimeoutMs?: number
  /** Default of {@link SubmitOptions.maxAttempts}. @defaultValue 3 */
  maxAttempts?: number
  /** A pino logger; silent by default. Payloads are never logged. */
  logger?: Logger
}

/** Defaults of {@link DispatcherOptions}. */
export const DISPATCHER_DEFAULTS = Object.freeze({
  prefix: 'sy',
  affinityTtlMs: 30_000,
  resultTtlMs: 60_000,
  timeoutMs: 30_000,
  maxPayloadBytes: 1_048_576,
  connectTimeoutMs: 5_000,
  maxAttempts: 3,
})

/** Options of one {@link Dispatcher.submit}. */
export interface SubmitOptions {
  /** Requests of one session go to the same worker while its binding lives. */
  session?: string
  /** Time limit of this request; past it the caller gets TIMEOUT and the job is not started. */
  timeoutMs?: number
  /** Aborting it makes the submit fail with ABORTED. */
  signal?: AbortSignal
  /** When no worker has room: fail at once with SATURATED, or retry with backoff until the timeout. @defaultValue 'reject' */
  onSaturated?: 'reject' | 'wait'
  /**
   * How many workers may be lost while holding this job (killed, or silent past their lease)
   * before it goes to the dead letters and the caller gets DEAD_LETTERED. @defaultValue 3
   */
  maxAttempts?: number
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
}

const KNOWN_OPTIONS = ['redis', 'pool', 'logger', ...Object.keys(DISPATCHER_DEFAULTS)]
const KNOWN_SUBMIT_OPTIONS = ['session', 'timeoutMs', 'signal', 'onSaturated', 'maxAttempts']
const nextId = monotonicFactory()

/**
 * The producer side: sends requests to the least-loaded worker of a pool and awaits their
 * results. One dispatcher per process and pool is enough; it batches the submits of each event
 * loop turn into one Redis call.
 */
export class Dispatcher<Req = unknown, Res = unknown> {
  readonly pool: string
  readonly producerId: string
  readonly #options: Required<Omit<DispatcherOptions, 'redis' | 'pool' | 'logger'>>
  readonly #keys: PoolKeys
  readonly #logger: Logger
  readonly #cmd: Connection
  readonly #sub: Connection
  readonly #batcher: DispatchBatcher
  readonly #results: ResultListener
  readonly #inflight = new Set<Promise<unknown>>()
  readonly #stats: DispatcherStats = {
    submitted: 0,
    succeeded: 0,
    failed: 0,
    affinityHits: 0,
    affinityMisses: 0,
    saturated: 0,
  }
  #ready: Promise<void> | undefined
  #isClosed = false

  /** @throws SwitchyardError INVALID_ARGUMENT when an option is out of range. */
  constructor(options: DispatcherOptions) {
    checkKnownOptions('Dispatcher', options, KNOWN_OPTIONS)
    if (options.redis === undefined) throw invalidArgument('redis is required: a URL or an ioredis client')
    this.pool = checkName('pool', options.pool)
    const merged = { ...DISPATCHER_DEFAULTS, ...stripUndefined(options) }
    this.#options = {
      prefix: checkName('prefix', merged.prefix),
      affinityTtlMs: checkInt('affinityTtlMs', merged.affinityTtlMs, 1),
      resultTtlMs: checkInt('resultTtlMs', merged.resultTtlMs, 1),
      timeoutMs: checkInt('timeoutMs', merged.timeoutMs, 1),
      maxPayloadBytes: checkInt('maxPayloadBytes', merged.maxPayloadBytes, 1, 512 * 1024 * 1024),
      connectTimeoutMs: checkInt('connectTimeoutMs', merged.connectTimeoutMs, 1),
      maxAttempts: checkInt('maxAttempts', merged.maxAttempts, 1, 100),
    }
    this.#logger = (options.logger ?? pino({ level: 'silent' })).child({
      component: 'dispatcher',
      pool: this.pool,
    })
    this.#keys = poolKeys(this.#options.prefix, this.pool)
    this.producerId = `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}-${nextId().slice(-8)}`
    this.#cmd = createConnection(options.redis, 'command', `sy:producer:${this.producerId}`)
    this.#sub = createConnection(options.redis, 'subscriber', `sy:results:${this.producerId}`)
    this.#batcher = new DispatchBatcher(this.#cmd, this.#keys, this.producerId, this.#options.affinityTtlMs)
    this.#results = new ResultListener(
      this.#sub,
      this.#cmd,
      this.#keys,
      resultChannel(this.#keys, this.producerId),
      this.#logger,
    )
  }

  /**
   * Sends `req` to a worker and resolves with the handler's result.
   * @throws SwitchyardError SATURATED, NO_WORKERS, TIMEOUT, ABORTED, HANDLER_ERROR, PAYLOAD_TOO_LARGE,
   * INVALID_ARGUMENT, CLOSED or REDIS_UNAVAILABLE.
   */
  submit(req: Req, options: SubmitOptions = {}): Promise<Res> {
    const job = this.#run(req, options)
    this.#inflight.add(job)
    const untrack = () => this.#inflight.delete(job)
    job.then(untrack, untrack)
    return job
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
    return { ...this.#stats }
  }

  /** Stops taking submits, lets the ones under way settle (each within its timeout), then disconnects. */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    await Promise.allSettled([...this.#inflight])
    this.#cmd.disconnect()
    this.#sub.disconnect()
  }

  async #run(req: Req, options: SubmitOptions): Promise<Res> {
    this.#stats.submitted++
    try {
      const res = await this.#attempt(req, options)
      this.#stats.succeeded++
      return res
    } catch (err) {
      this.#stats.failed++
      throw err
    }
  }

  async #attempt(req: Req, options: SubmitOptions): Promise<Res> {
    if (this.#isClosed) throw new SwitchyardError('CLOSED', 'the dispatcher is closed')
    checkKnownOptions('submit', options, KNOWN_SUBMIT_OPTIONS)
    const session = options.session === undefined ? '' : checkSession(options.session)
    const timeoutMs =
      options.timeoutMs === undefined ? this.#options.timeoutMs : checkInt('timeoutMs', options.timeoutMs, 1)
    const onSaturated =
      options.onSaturated === undefined
        ? 'reject'
        : checkOneOf('onSaturated', options.onSaturated, ['reject', 'wait'])
    const maxAttempts =
      options.maxAttempts === undefined
        ? this.#options.maxAttempts
        : checkInt('maxAttempts', options.maxAttempts, 1, 100)
    const payload = this.#encode(req)
    const { signal } = options
    if (signal?.aborted) throw aborted(signal)

    const startedAt = Date.now()
    const deadline = startedAt + timeoutMs
    await this.#connect()

    const jobId = nextId()
    return new Promise<Res>((resolve, reject) => {
      let isSettled = false
      const settle = (err: unknown, value?: unknown) => {
        if (isSettled) return
        isSettled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.#results.forget(jobId)
        if (err === undefined) resolve(value as Res)
        else reject(err)
      }
      const timer = setTimeout(
        () => settle(new SwitchyardError('TIMEOUT', `no result within ${timeoutMs} ms`, { jobId })),
        Math.max(0, deadline - Date.now()),
      )
      const onAbort = () => settle(signal ? aborted(signal) : undefined)
      signal?.addEventListener('abort', onAbort, { once: true })
      // Listen before dispatching: a fast worker can answer before the dispatch reply arrives.
      this.#results.expect(jobId, (env) => {
        if (env.ok) settle(undefined, env.value)
        else settle(envelopeError(jobId, env))
      })

      const dispatchOnce = (attemptNo: number) => {
        this.#batcher
          .dispatch({
            jobId,
            session,
            payload,
            timeoutMs: Math.max(1, deadline - Date.now()),
            attempt: 1,
            maxAttempts,
            exclude: '',
          })
          .then((outcome) =>
            this.#onDispatched(
              outcome,
              session,
              jobId,
              onSaturated,
              deadline,
              attemptNo,
              dispatchOnce,
              settle,
            ),
          )
          .catch((err: unknown) => settle(err))
      }
      dispatchOnce(0)
    })
  }

  #onDispatched(
    outcome: DispatchOutcome,
    session: string,
    jobId: string,
    onSaturated: 'reject' | 'wait',
    deadline: number,
    attemptNo: number,
    retry: (attemptNo: number) => void,
    settle: (err: unknown) => void,
  ): void {
    if (outcome.status === 'queued') {
      if (session !== '') {
        if (outcome.isAffinityHit) this.#stats.affinityHits++
        else this.#stats.affinityMisses++
      }
      return
    }
    if (outcome.status === 'SATURATED') this.#stats.saturated++
    const delayMs = Math.min(5 * 2 ** attemptNo, 250) * (0.5 + Math.random() / 2)
    if (onSaturated === 'wait' && Date.now() + delayMs < deadline) {
      setTimeout(() => retry(attemptNo + 1), delayMs)
      return
    }
    settle(
      outcome.status === 'SATURATED'
        ? new SwitchyardError('SATURATED', `every worker of pool '${this.pool}' is at capacity`, { jobId })
        : new SwitchyardError('NO_WORKERS', `pool '${this.pool}' has no live worker`, { jobId }),
    )
  }

  #encode(req: Req): string {
    let payload: string | undefined
    try {
      payload = JSON.stringify(req)
    } catch (err) {
      throw new SwitchyardError(
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
      throw new SwitchyardError(
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
        () => {},
      )
      // A failed first connection is retried by the next call rather than cached forever.
      this.#ready.catch(() => {
        this.#ready = undefined
      })
    }
    return this.#ready
  }
}

function aborted(signal: AbortSignal): SwitchyardError {
  return new SwitchyardError('ABORTED', 'the submit was aborted', { cause: signal.reason })
}

function stripUndefined<T extends object>(obj: T): Partial<T> {
  return Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as Partial<T>
}
