import { hostname } from 'node:os'
import { type Logger, pino } from 'pino'
import { invalidArgument } from '../protocol/errors.js'
import { type PoolKeys, poolKeys } from '../protocol/keys.js'
import { checkInt, checkKnownOptions, checkName } from '../protocol/validate.js'
import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  redisFailure,
} from '../redis/connection.js'
import { Completer } from './completer.js'
import type { Handler } from './run-job.js'
import { WorkerLoop } from './worker-loop.js'

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
  /** @defaultValue 'sy' */
  prefix?: string
  /** A pino logger; silent by default. Payloads are never logged. */
  logger?: Logger
  /** How long a worker counts as alive after its last heartbeat. @defaultValue 5000 */
  leaseMs?: number
  /** Worker ids are `<idPrefix>-<n>`; a worker restarted with the same id resumes its pending jobs. @defaultValue `<host>-<pid>` */
  idPrefix?: string
  /** BLOCK of each read, in ms. @defaultValue 5000 */
  blockMs?: number
  /** Largest result, as JSON in UTF-8; a larger one fails with RESULT_TOO_LARGE. @defaultValue 1048576 */
  maxResultBytes?: number
  /** How long a result is kept in Redis for recovery. @defaultValue 60000 */
  resultTtlMs?: number
  /** How long `close()` waits for running jobs before aborting them. @defaultValue 30000 */
  drainTimeoutMs?: number
}

/** Defaults of {@link WorkerOptions}. */
export const WORKER_DEFAULTS = Object.freeze({
  count: 1,
  concurrency: 8,
  queueCapacity: 64,
  prefix: 'sy',
  leaseMs: 5_000,
  blockMs: 5_000,
  maxResultBytes: 1_048_576,
  resultTtlMs: 60_000,
  drainTimeoutMs: 30_000,
})

/** Workers running in this process. */
export interface WorkerGroup {
  readonly workerIds: readonly string[]
  /** Drains gracefully: no new jobs, running ones finish (up to drainTimeoutMs), then deregisters. */
  close(): Promise<void>
}

const KNOWN_OPTIONS = ['redis', 'pool', 'handler', 'logger', 'idPrefix', ...Object.keys(WORKER_DEFAULTS)]

/**
 * Starts `count` workers of a pool in this process and registers them in Redis.
 * @throws SwitchyardError INVALID_ARGUMENT for a bad option, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function startWorkers<Req = unknown, Res = unknown>(
  options: WorkerOptions<Req, Res>,
): Promise<WorkerGroup> {
  checkKnownOptions('startWorkers', options, KNOWN_OPTIONS)
  if (options.redis === undefined) throw invalidArgument('redis is required: a URL or an ioredis client')
  if (typeof options.handler !== 'function')
    throw invalidArgument('handler must be a function (req, ctx) => result')
  const o = {
    ...WORKER_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  }
  const pool = checkName('pool', options.pool)
  const settings = {
    count: checkInt('count', o.count, 1, 1_000),
    concurrency: checkInt('concurrency', o.concurrency, 1, 10_000),
    queueCapacity: checkInt('queueCapacity', o.queueCapacity, 0, 1_000_000),
    leaseMs: checkInt('leaseMs', o.leaseMs, 100),
    blockMs: checkInt('blockMs', o.blockMs, 10),
    maxResultBytes: checkInt('maxResultBytes', o.maxResultBytes, 1),
    resultTtlMs: checkInt('resultTtlMs', o.resultTtlMs, 1),
    drainTimeoutMs: checkInt('drainTimeoutMs', o.drainTimeoutMs, 0),
  }
  const prefix = checkName('prefix', o.prefix)
  const idPrefix = checkName(
    'idPrefix',
    options.idPrefix ?? `${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}`,
  )
  const keys = poolKeys(prefix, pool)
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'worker', pool })
  const workerIds = Array.from({ length: settings.count }, (_, i) => `${idPrefix}-${i + 1}`)

  const cmd = createConnection(options.redis, 'command', `sy:workers:${idPrefix}`)
  try {
    await connectReady(cmd, 5_000)
  } catch (err) {
    cmd.disconnect()
    throw err
  }
  const group = new Group(cmd, keys, workerIds, settings, logger)
  try {
    await group.register(workerIds)
  } catch (err) {
    cmd.disconnect()
    throw redisFailure(err, 'registering workers')
  }
  const completer = new Completer(cmd, keys, settings.resultTtlMs, logger)
  const loops = workerIds.map(
    (id) =>
      new WorkerLoop(id, {
        redis: options.redis,
        keys,
        handler: options.handler as Handler,
        concurrency: settings.concurrency,
        blockMs: settings.blockMs,
        maxResultBytes: settings.maxResultBytes,
        completer,
        redisNow: () => Date.now() + group.clockOffsetMs,
        reregister: (workerId) => group.register([workerId]),
        logger,
      }),
  )
  group.start(loops)
  logger.info(
    { workerIds, concurrency: settings.concurrency, queueCapacity: settings.queueCapacity },
    'workers started',
  )
  return { workerIds, close: () => group.close() }
}

interface GroupSettings {
  concurrency: number
  queueCapacity: number
  leaseMs: number
  drainTimeoutMs: number
}

/** The state the workers of one process share: the command connection, the lease, the clock offset. */
class Group {
  clockOffsetMs = 0
  readonly #cmd: Connection
  readonly #keys: PoolKeys
  readonly #workerIds: string[]
  readonly #settings: GroupSettings
  readonly #logger: Logger
  #loops: WorkerLoop[] = []
  #heartbeat: NodeJS.Timeout | undefined
  #closing: Promise<void> | undefined

  constructor(cmd: Connection, keys: PoolKeys, workerIds: string[], settings: GroupSettings, logger: Logger) {
    this.#cmd = cmd
    this.#keys = keys
    this.#workerIds = workerIds
    this.#settings = settings
    this.#logger = logger
  }

  async register(ids: string[]): Promise<void> {
    const { concurrency, queueCapacity, leaseMs } = this.#settings
    const k = this.#keys
    const sentAt = Date.now()
    const redisMs = Number(
      await this.#cmd.register(
        k.load,
        k.ready,
        k.alive,
        k.base,
        leaseMs,
        hostname(),
        process.pid,
        concurrency,
        concurrency + queueCapacity,
        ...ids,
      ),
    )
    this.#measureClock(sentAt, redisMs)
  }

  start(loops: WorkerLoop[]): void {
    this.#loops = loops
    for (const loop of loops) {
      loop
        .start()
        .catch((err: unknown) => this.#logger.error({ err, workerId: loop.workerId }, 'worker loop failed'))
    }
    this.#heartbeat = setInterval(
      () => void this.#beat(),
      Math.max(50, Math.floor(this.#settings.leaseMs / 3)),
    )
  }

  async #beat(): Promise<void> {
    const k = this.#keys
    const sentAt = Date.now()
    try {
      const reply = (await this.#cmd.heartbeat(
        k.load,
        k.ready,
        k.alive,
        k.base,
        this.#settings.leaseMs,
        ...this.#workerIds,
      )) as (string | number)[]
      this.#measureClock(sentAt, Number(reply[0]))
      const gone = this.#workerIds.filter((_, i) => reply[i + 1] === 'GONE')
      if (gone.length > 0 && this.#closing === undefined) {
        this.#logger.warn({ workerIds: gone }, 'workers were removed from the pool; registering them again')
        await this.register(gone)
      }
    } catch (err) {
      this.#logger.warn({ err }, 'heartbeat failed; the lease runs out unless the next one succeeds')
    }
  }

  #measureClock(sentAt: number, redisMs: number): void {
    this.clockOffsetMs = redisMs - Math.round((sentAt + Date.now()) / 2)
  }

  close(): Promise<void> {
    this.#closing ??= this.#close()
    return this.#closing
  }

  async #close(): Promise<void> {
    const k = this.#keys
    await this.#cmd.drain(k.ready, k.base, ...this.#workerIds).catch((err: unknown) => {
      this.#logger.warn({ err }, 'could not mark workers as draining')
    })
    const drained = Promise.all(this.#loops.map((loop) => loop.drain(this.#cmd)))
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#settings.drainTimeoutMs)
    })
    const isTimedOut = await Promise.race([drained.then(() => false), timedOut])
    clearTimeout(timer)
    if (isTimedOut) {
      this.#logger.warn(
        { drainTimeoutMs: this.#settings.drainTimeoutMs },
        'drain timed out; aborting running jobs',
      )
    }
    await Promise.all(this.#loops.map((loop) => loop.stop(this.#cmd, 'worker closing')))
    clearInterval(this.#heartbeat)
    try {
      const statuses = (await this.#cmd.deregister(
        k.load,
        k.ready,
        k.alive,
        k.base,
        ...this.#workerIds,
      )) as string[]
      const busy = this.#workerIds.filter((_, i) => statuses[i] === 'BUSY')
      if (busy.length > 0)
        this.#logger.warn({ workerIds: busy }, 'workers still hold jobs; left registered as draining')
    } catch (err) {
      this.#logger.warn({ err }, 'could not deregister workers')
    }
    this.#logger.info({ workerIds: this.#workerIds }, 'workers stopped')
    this.#cmd.disconnect()
  }
}
