import { hostname } from 'node:os'
import { type Logger, pino } from 'pino'
import { checkSink, type MetricsSink } from '../observe/metrics-sink.js'
import { invalidArgument } from '../protocol/errors.js'
import { type PoolKeys, poolKeys } from '../protocol/keys.js'
import { checkInt, checkKnownOptions, checkMs, checkName, MAX_TIMER_MS } from '../protocol/validate.js'
import { MAX_CHUNKS_LIMIT } from '../protocol/wire.js'
import type { RedisInput } from '../redis/connection.js'
import { WATCHDOG_MARGIN_MS } from './entry-reader.js'
import type { Handler } from './run-job.js'

/** Options of {@link startWorkers}. */
export interface WorkerOptions<Req, Res> {
  /** A Redis URL, or an ioredis client whose settings the workers' own connections copy. */
  redis: RedisInput
  /** The pool's name: letters, digits and `_ . : -`. */
  pool: string
  /** Runs each job: gets the request and a context with an AbortSignal. */
  handler: Handler<Req, Res>
  /** Workers in this process, each with its own stream and slots. @defaultValue 1 */
  count?: number
  /** Jobs one worker runs at once. @defaultValue 8 */
  concurrency?: number
  /** Jobs one worker may hold queued beyond those it runs; dispatch never exceeds it. @defaultValue 64 */
  queueCapacity?: number
  /**
   * Queued jobs one worker reads ahead of its free slots, so each starts the moment a slot frees
   * instead of a round trip later: for short jobs this multiplies throughput at low concurrency.
   * They are queued on this worker already, so routing does not change, but a job read ahead
   * counts as started if the worker dies: rescue raises its attempt. A draining worker hands its
   * read-ahead jobs to other workers, attempt unchanged. 0 reads only as many as there are free
   * slots. @defaultValue 0
   */
  prefetch?: number
  /** @defaultValue 'hy' */
  prefix?: string
  /** A pino logger; silent by default. Payloads are never logged. */
  logger?: Logger
  /** How long a worker counts as alive after its last heartbeat. @defaultValue 5000 */
  leaseMs?: number
  /** Worker ids are `<idPrefix>-<n>`; a worker restarted with the same id resumes its pending jobs. @defaultValue `<host>-<pid>` */
  idPrefix?: string
  /**
   * The machine these workers run on, as each worker's hash records it: a hedge, retry or rescued
   * copy goes to a worker on another host than the slow copy's when one has room, else to another
   * process. Set it where the OS host name is not the machine's (in a container, say, the node's
   * name): letters, digits and `_ . : -`. @defaultValue `os.hostname()`
   */
  host?: string
  /** BLOCK of each read, in ms. @defaultValue 5000 */
  blockMs?: number
  /** Largest result, as JSON in UTF-8; a larger one fails with RESULT_TOO_LARGE. @defaultValue 1048576 */
  maxResultBytes?: number
  /**
   * Largest request payload a worker runs, as JSON in UTF-8 (the producer's `maxPayloadBytes` by
   * default): an entry written by another client with a larger one goes to the dead letters and
   * its caller gets DEAD_LETTERED. @defaultValue 1048576
   */
  maxPayloadBytes?: number
  /** How long a result is kept in Redis for recovery. @defaultValue 60000 */
  resultTtlMs?: number
  /** How long `close()` waits for running jobs before aborting them. @defaultValue 30000 */
  drainTimeoutMs?: number
  /** Most entries the dead-letter stream keeps (trimmed approximately). @defaultValue 10000 */
  deadLetterCap?: number
  /** Most chunks one streamed job may emit; past it the job ends with STREAM_OVERFLOW. @defaultValue 10000 */
  maxChunks?: number
  /** Largest chunk, as JSON in UTF-8; a larger one ends its job with STREAM_OVERFLOW. @defaultValue 65536 */
  maxChunkBytes?: number
  /**
   * Each worker's breaker: after `failures` consecutive retryable failures or timeouts, the worker
   * leaves dispatch for `coolOffMs`, then takes one probe job; a success closes the breaker, a
   * failure opens it again. `false` for none. @defaultValue { failures: 5, coolOffMs: 5000 }
   */
  breaker?: BreakerOptions | false
  /**
   * Where to report each job's outcome, run time and queue wait, the workers' load, rescues and
   * dead letters (e.g. `prometheusMetrics()` from `hedgeyard/prometheus`); none by default.
   */
  metrics?: MetricsSink
}

/** A worker's breaker (see {@link WorkerOptions.breaker}). */
export interface BreakerOptions {
  /** Consecutive retryable failures or timeouts that open it. @defaultValue 5 */
  failures?: number
  /** How long it stays open before a probe job. @defaultValue 5000 */
  coolOffMs?: number
}

const BREAKER_DEFAULTS = Object.freeze({ failures: 5, coolOffMs: 5_000 })

/** Defaults of {@link WorkerOptions}. */
export const WORKER_DEFAULTS = Object.freeze({
  count: 1,
  concurrency: 8,
  queueCapacity: 64,
  prefix: 'hy',
  leaseMs: 5_000,
  blockMs: 5_000,
  maxResultBytes: 1_048_576,
  maxPayloadBytes: 1_048_576,
  resultTtlMs: 60_000,
  drainTimeoutMs: 30_000,
  deadLetterCap: 10_000,
  prefetch: 0,
  maxChunks: 10_000,
  maxChunkBytes: 65_536,
})

const KNOWN_OPTIONS = [
  'redis',
  'pool',
  'handler',
  'logger',
  'idPrefix',
  'host',
  'breaker',
  'metrics',
  ...Object.keys(WORKER_DEFAULTS),
]

/** The options of {@link startWorkers} checked, with the defaults filled in. */
export interface WorkerSettings {
  redis: RedisInput
  handler: Handler
  pool: string
  keys: PoolKeys
  host: string
  idPrefix: string
  workerIds: string[]
  logger: Logger
  metrics: MetricsSink | undefined
  count: number
  concurrency: number
  queueCapacity: number
  prefetch: number
  leaseMs: number
  blockMs: number
  maxResultBytes: number
  maxPayloadBytes: number
  resultTtlMs: number
  drainTimeoutMs: number
  deadLetterCap: number
  maxChunks: number
  maxChunkBytes: number
  breakerFailures: number
  breakerCoolOffMs: number
}

/**
 * Checks the options of startWorkers, each once, and fills in the defaults.
 * @throws HedgeyardError INVALID_ARGUMENT naming the option and what is allowed.
 */
export function checkWorkerOptions<Req, Res>(options: WorkerOptions<Req, Res>): WorkerSettings {
  checkKnownOptions('startWorkers', options, KNOWN_OPTIONS)
  if (options.redis === undefined) throw invalidArgument('redis is required: a URL or an ioredis client')
  if (typeof options.handler !== 'function')
    throw invalidArgument('handler must be a function (req, ctx) => result')
  const o = {
    ...WORKER_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  }
  const pool = checkName('pool', options.pool)
  const checked = {
    count: checkInt('count', o.count, 1, 1_000),
    concurrency: checkInt('concurrency', o.concurrency, 1, 10_000),
    queueCapacity: checkInt('queueCapacity', o.queueCapacity, 0, 1_000_000),
    prefetch: checkInt('prefetch', o.prefetch, 0, 10_000),
    leaseMs: checkMs('leaseMs', o.leaseMs, 100),
    // The read watchdog waits blockMs plus its margin: that sum must fit in a timer too.
    blockMs: checkMs('blockMs', o.blockMs, 10, MAX_TIMER_MS - WATCHDOG_MARGIN_MS),
    maxResultBytes: checkInt('maxResultBytes', o.maxResultBytes, 1),
    maxPayloadBytes: checkInt('maxPayloadBytes', o.maxPayloadBytes, 1, 512 * 1024 * 1024),
    resultTtlMs: checkInt('resultTtlMs', o.resultTtlMs, 1),
    drainTimeoutMs: checkMs('drainTimeoutMs', o.drainTimeoutMs, 0),
    deadLetterCap: checkInt('deadLetterCap', o.deadLetterCap, 1),
    maxChunks: checkInt('maxChunks', o.maxChunks, 1, MAX_CHUNKS_LIMIT),
    maxChunkBytes: checkInt('maxChunkBytes', o.maxChunkBytes, 1, 512 * 1024 * 1024),
    ...checkBreaker(options.breaker),
    metrics: checkSink(options.metrics),
  }
  const prefix = checkName('prefix', o.prefix)
  const host = options.host === undefined ? hostname() : checkName('host', options.host)
  const idPrefix = checkName(
    'idPrefix',
    options.idPrefix ?? `${host.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}`,
  )
  return {
    ...checked,
    redis: options.redis,
    handler: options.handler as Handler,
    pool,
    keys: poolKeys(prefix, pool),
    host,
    idPrefix,
    workerIds: Array.from({ length: checked.count }, (_, i) => `${idPrefix}-${i + 1}`),
    logger: (options.logger ?? pino({ level: 'silent' })).child({ component: 'worker', pool }),
  }
}

function checkBreaker(b: BreakerOptions | false | undefined): {
  breakerFailures: number
  breakerCoolOffMs: number
} {
  if (b === false) return { breakerFailures: 0, breakerCoolOffMs: BREAKER_DEFAULTS.coolOffMs }
  if (b !== undefined && (typeof b !== 'object' || b === null)) {
    throw invalidArgument('breaker must be an object { failures, coolOffMs } or false')
  }
  checkKnownOptions('breaker', b ?? {}, Object.keys(BREAKER_DEFAULTS))
  return {
    breakerFailures: checkInt('breaker.failures', b?.failures ?? BREAKER_DEFAULTS.failures, 1, 1_000_000),
    breakerCoolOffMs: checkMs('breaker.coolOffMs', b?.coolOffMs ?? BREAKER_DEFAULTS.coolOffMs, 1),
  }
}
