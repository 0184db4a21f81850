import { hostname } from 'node:os'
import { type Logger, pino } from 'pino'
import { checkSink, type MetricsSink, notify } from '../observe/metrics-sink.js'
import type { JobEntry } from '../protocol/codec.js'
import { invalidArgument } from '../protocol/errors.js'
import { cancelChannel, type PoolKeys, poolKeys } from '../protocol/keys.js'
import { type ClaimVerdict, claimJobs } from '../protocol/scripts/claim.js'
import { deregisterWorkers } from '../protocol/scripts/deregister.js'
import { drainWorkerKeys } from '../protocol/scripts/drain.js'
import { heartbeat } from '../protocol/scripts/heartbeat.js'
import { registerWorkers } from '../protocol/scripts/register.js'
import { type RescueMode, type RescueResult, rescueJobs } from '../protocol/scripts/rescue.js'
import { checkInt, checkKnownOptions, checkMs, checkName, MAX_TIMER_MS } from '../protocol/validate.js'
import { MAX_CHUNKS_LIMIT } from '../protocol/wire.js'
import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  redisFailure,
} from '../redis/connection.js'
import { ChunkWriter } from './chunk-writer.js'
import { Completer } from './completer.js'
import type { Handler } from './run-job.js'
import { WATCHDOG_MARGIN_MS, WorkerLoop } from './worker-loop.js'

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

/** Workers running in this process. */
export interface WorkerGroup {
  readonly workerIds: readonly string[]
  /**
   * Drains gracefully: no new jobs, unread ones handed to other workers, running ones finish (up
   * to drainTimeoutMs), then the workers deregister.
   */
  close(): Promise<void>
  /** Settles when every worker has stopped: after `close()`, or after each was drained remotely (`hedgeyard drain`). */
  readonly done: Promise<void>
}

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

/**
 * Starts `count` workers of a pool in this process and registers them in Redis.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad option, REDIS_UNAVAILABLE when Redis cannot be reached.
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
    pool,
  }
  const metrics = settings.metrics
  const prefix = checkName('prefix', o.prefix)
  const host = options.host === undefined ? hostname() : checkName('host', options.host)
  const idPrefix = checkName(
    'idPrefix',
    options.idPrefix ?? `${host.replace(/[^A-Za-z0-9_.-]/g, '_')}-${process.pid}`,
  )
  const keys = poolKeys(prefix, pool)
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ component: 'worker', pool })
  const workerIds = Array.from({ length: settings.count }, (_, i) => `${idPrefix}-${i + 1}`)

  const cmd = createConnection(options.redis, 'command', `hy:workers:${idPrefix}`)
  try {
    await connectReady(cmd, 5_000)
  } catch (err) {
    cmd.disconnect()
    throw err
  }
  const group = new Group(cmd, keys, { ...settings, host }, logger, () => {
    completer.close()
    chunks.close()
  })
  try {
    await group.register(workerIds)
  } catch (err) {
    cmd.disconnect()
    throw redisFailure(err, 'registering workers')
  }
  const completer = new Completer(cmd, keys, settings.resultTtlMs, settings.deadLetterCap, logger)
  const chunks = new ChunkWriter(cmd, keys, settings.resultTtlMs, logger)
  const stream = {
    writer: chunks,
    maxChunks: settings.maxChunks,
    maxChunkBytes: settings.maxChunkBytes,
    maxResultBytes: settings.maxResultBytes,
  }
  const loops = workerIds.map(
    (id) =>
      new WorkerLoop(id, {
        redis: options.redis,
        keys,
        handler: options.handler as Handler,
        concurrency: settings.concurrency,
        prefetch: settings.prefetch,
        blockMs: settings.blockMs,
        maxResultBytes: settings.maxResultBytes,
        maxPayloadBytes: settings.maxPayloadBytes,
        completer,
        redisNow: () => Date.now() + group.clockOffsetMs,
        reregister: (workerId) => group.register([workerId]),
        claim: (workerId, entries) => group.claim(workerId, entries),
        stream,
        logger,
        metrics,
        pool,
      }),
  )
  const sub = createConnection(options.redis, 'subscriber', `hy:cancels:${idPrefix}`)
  try {
    await group.start(loops, sub)
  } catch (err) {
    // Nothing left behind: no connection open, no worker registered without a heartbeat.
    sub.disconnect()
    for (const loop of loops) await loop.stop(cmd, 'workers failed to start')
    await deregisterWorkers(cmd, keys, workerIds).catch(() => {})
    cmd.disconnect()
    throw redisFailure(err, 'subscribing to cancels')
  }
  logger.info(
    { workerIds, concurrency: settings.concurrency, queueCapacity: settings.queueCapacity },
    'workers started',
  )
  if (metrics !== undefined) {
    const capacity = settings.concurrency + settings.queueCapacity
    notify(metrics, 'workersStarted', pool, idPrefix, () =>
      loops.map((loop) => ({
        workerId: loop.workerId,
        inflight: loop.inflight,
        capacity,
        concurrency: settings.concurrency,
      })),
    )
    void group.done.then(() => notify(metrics, 'workersStopped', pool, idPrefix))
  }
  return { workerIds, close: () => group.close(), done: group.done }
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

interface GroupSettings {
  host: string
  breakerFailures: number
  breakerCoolOffMs: number
  concurrency: number
  queueCapacity: number
  leaseMs: number
  drainTimeoutMs: number
  resultTtlMs: number
  deadLetterCap: number
  metrics: MetricsSink | undefined
  pool: string
}

/** Entries one rescue call moves at most; a larger backlog is moved over several heartbeats. */
const RESCUE_BUDGET = 500

/**
 * The state the workers of one process share: the command connection, the lease, the clock
 * offset, and the rescue of workers that died, which every live group runs on its heartbeat.
 */
class Group {
  clockOffsetMs = 0
  readonly done: Promise<void>
  readonly #cmd: Connection
  readonly #keys: PoolKeys
  readonly #settings: GroupSettings
  readonly #logger: Logger
  /** Workers still serving, by id; a drained worker leaves this map. */
  readonly #loops = new Map<string, WorkerLoop>()
  readonly #draining = new Map<string, Promise<void>>()
  #heartbeat: NodeJS.Timeout | undefined
  #sub: Connection | undefined
  #isBeating = false
  #resolveDone: () => void = () => {}
  readonly #onStopped: () => void

  constructor(
    cmd: Connection,
    keys: PoolKeys,
    settings: GroupSettings,
    logger: Logger,
    onStopped: () => void,
  ) {
    this.#onStopped = onStopped
    this.#cmd = cmd
    this.#keys = keys
    this.#settings = settings
    this.#logger = logger
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve
    })
  }

  async register(ids: string[]): Promise<void> {
    const { concurrency, queueCapacity, leaseMs, breakerFailures, breakerCoolOffMs } = this.#settings
    const sentAt = Date.now()
    const redisMs = await registerWorkers(
      this.#cmd,
      this.#keys,
      {
        leaseMs,
        host: this.#settings.host,
        pid: process.pid,
        concurrency,
        capacity: concurrency + queueCapacity,
        breakerFailures,
        breakerCoolOffMs,
      },
      ids,
    )
    this.#measureClock(sentAt, redisMs)
  }

  async start(loops: WorkerLoop[], sub: Connection): Promise<void> {
    this.#sub = sub
    // Worker ids may contain ':', so a channel is mapped back to its worker, not parsed.
    const byChannel = new Map(loops.map((loop) => [cancelChannel(this.#keys, loop.workerId), loop.workerId]))
    // A message is the entry id, then, from a cancel, a space and why (a winner's sends the id alone).
    sub.on('message', (channel: string, message: string) => {
      const workerId = byChannel.get(channel)
      if (workerId === undefined) return
      const space = message.indexOf(' ')
      const entryId = space < 0 ? message : message.slice(0, space)
      const reason = space < 0 ? 'another copy of this job won' : message.slice(space + 1)
      this.#loops.get(workerId)?.cancel(entryId, reason)
    })
    await connectReady(sub, 5_000)
    await sub.subscribe(...loops.map((loop) => cancelChannel(this.#keys, loop.workerId)))
    for (const loop of loops) {
      this.#loops.set(loop.workerId, loop)
      loop
        .start()
        .catch((err: unknown) => this.#logger.error({ err, workerId: loop.workerId }, 'worker loop failed'))
    }
    this.#heartbeat = setInterval(
      () => void this.#beat(),
      Math.max(50, Math.floor(this.#settings.leaseMs / 3)),
    )
  }

  /** Which copies of hedged or tied jobs still need running: true to run, false to skip. */
  claim(workerId: string, entries: JobEntry[]): Promise<ClaimVerdict[]> {
    return claimJobs(this.#cmd, this.#keys, this.#settings.resultTtlMs, workerId, entries)
  }

  /** Renews the leases, notices remote drains and lost registrations, then rescues dead workers. */
  async #beat(): Promise<void> {
    if (this.#isBeating) return
    this.#isBeating = true
    // Draining workers keep their lease too: their running jobs are theirs until they finish.
    const ids = [...this.#loops.keys()]
    try {
      if (ids.length > 0) {
        const sentAt = Date.now()
        const { redisMs, statuses } = await heartbeat(this.#cmd, this.#keys, this.#settings.leaseMs, ids)
        this.#measureClock(sentAt, redisMs)
        const gone = ids.filter((_, i) => statuses[i] === 'GONE')
        const broken = ids.filter((_, i) => statuses[i] === 'BROKEN')
        const drain = ids.filter((id, i) => statuses[i] === 'DRAINING' && !this.#draining.has(id))
        if (gone.length > 0) {
          this.#logger.warn({ workerIds: gone }, 'workers were removed from the pool; registering them again')
        }
        if (broken.length > 0) {
          this.#logger.error(
            { workerIds: broken },
            'worker keys hold another type than Hedgeyard writes (changed by another client); registering again replaces them',
          )
        }
        if (gone.length + broken.length > 0) await this.register([...gone, ...broken])
        if (drain.length > 0) {
          this.#logger.info({ workerIds: drain }, 'asked to drain')
          void this.#drain(drain)
        }
      }
      const { removed, moved, lettered, dropped } = await this.#rescue({ mode: 'dead' }, RESCUE_BUDGET)
      if (removed || moved || lettered || dropped) {
        this.#logger.info({ removed, moved, lettered, dropped }, 'rescued the jobs of dead workers')
      }
      if (moved || lettered) notify(this.#settings.metrics, 'rescued', this.#settings.pool, moved, lettered)
    } catch (err) {
      this.#logger.warn({ err }, 'heartbeat failed; the lease runs out unless the next one succeeds')
    } finally {
      this.#isBeating = false
    }
  }

  #measureClock(sentAt: number, redisMs: number): void {
    this.clockOffsetMs = redisMs - Math.round((sentAt + Date.now()) / 2)
  }

  /** Drains every worker still serving; settles when all have stopped. */
  async close(): Promise<void> {
    await this.#drain([...this.#loops.keys()])
    await this.done
  }

  #drain(ids: string[]): Promise<void> {
    const fresh = ids.filter((id) => this.#loops.has(id) && !this.#draining.has(id))
    const waits = ids.map((id) => this.#draining.get(id)).filter((p) => p !== undefined)
    if (fresh.length > 0) {
      const run = this.#drainNow(fresh)
      for (const id of fresh) this.#draining.set(id, run)
      waits.push(run)
    }
    return Promise.all(waits).then(() => {})
  }

  /** Runs the rescue script (see rescue.lua) with this group's settings. */
  #rescue(what: RescueMode, budget: number): Promise<RescueResult> {
    const { deadLetterCap, resultTtlMs } = this.#settings
    return rescueJobs(this.#cmd, this.#keys, { budget, deadLetterCap, resultTtlMs }, what)
  }

  /** Hands a draining worker's read-ahead jobs to live workers; what none has room for runs here. */
  async #returnReadAhead(loop: WorkerLoop): Promise<void> {
    const entries = loop.takeBacklog()
    if (entries.length === 0) return
    let handled = 0
    try {
      const entryIds = entries.map((e) => e.entryId)
      const reply = await this.#rescue({ mode: 'return', workerId: loop.workerId, entryIds }, 100_000)
      handled = reply.handled
    } catch (err) {
      this.#logger.warn(
        { err, workerId: loop.workerId },
        'could not hand back jobs read ahead; running them here',
      )
    }
    loop.restoreBacklog(entries.slice(handled))
  }

  async #drainNow(ids: string[]): Promise<void> {
    const loops = ids.map((id) => this.#loops.get(id) as WorkerLoop)
    try {
      // Out of dispatch first, then the unread jobs go to other workers; what no one has room
      // for stays and is run here.
      await drainWorkerKeys(this.#cmd, this.#keys, ids)
      await this.#rescue({ mode: 'handback', workerIds: ids }, 100_000)
    } catch (err) {
      this.#logger.warn({ err, workerIds: ids }, 'could not hand back unread jobs; running them here')
    }
    // Jobs read ahead (prefetch) were not started either: they go too, attempt unchanged, rather
    // than making the drain wait for them.
    await Promise.all(loops.map((loop) => this.#returnReadAhead(loop)))
    const drained = Promise.all(loops.map((loop) => loop.drain(this.#cmd)))
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
    await Promise.all(loops.map((loop) => loop.stop(this.#cmd, 'worker closing')))
    try {
      const statuses = await deregisterWorkers(this.#cmd, this.#keys, ids)
      const busy = ids.filter((_, i) => statuses[i] === 'BUSY')
      // Left registered as draining: once its lease runs out, rescue moves what it still holds.
      if (busy.length > 0)
        this.#logger.warn({ workerIds: busy }, 'workers still hold jobs; left to be rescued')
    } catch (err) {
      this.#logger.warn(
        { err },
        'could not deregister workers; their lease will run out and rescue takes over',
      )
    }
    for (const id of ids) this.#loops.delete(id)
    this.#logger.info({ workerIds: ids }, 'workers stopped')
    if (this.#loops.size === 0) {
      clearInterval(this.#heartbeat)
      this.#onStopped()
      this.#sub?.disconnect()
      this.#cmd.disconnect()
      this.#resolveDone()
    }
  }
}
