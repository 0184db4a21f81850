import { notify } from '../observe/metrics-sink.js'
import { readWorkerMetrics, type WorkerMetrics } from '../observe/worker-metrics.js'
import {
  Dispatcher,
  type DispatcherOptions,
  type DispatcherStats,
  type ResumeOptions,
} from '../producer/dispatcher.js'
import { CANCEL_RESULT_TTL_MS, type CancelOutcome, endJob, outcomeOf } from '../producer/end-job.js'
import { type JobState, readJobState } from '../producer/job-state.js'
import type { JobStream } from '../producer/job-stream.js'
import type { SubmitOptions } from '../producer/submit-options.js'
import { HedgeyardError } from '../protocol/errors.js'
import { type PoolKeys, poolKeys, resumedKey } from '../protocol/keys.js'
import { checkInt, checkKnownOptions, checkMs, checkName } from '../protocol/validate.js'
import { type Connection, connectReady, createConnection, redisFailure } from '../redis/connection.js'
import { CellLoad } from './cell-load.js'
import { cellPools, checkCells, sessionCell } from './cell-pools.js'
import { forwardStream } from './forward-stream.js'

/** Options of a {@link CellDispatcher}: a Dispatcher's, and how many cells the pool has. */
export interface CellDispatcherOptions extends DispatcherOptions {
  /** Cells of the pool, 1 to 1024: cell `i` of pool `chat` is the pool `chat.i`. */
  cells: number
  /** How long a cell's load summary is trusted before it is read again. @defaultValue 5 */
  loadCacheMs?: number
}

/** Defaults of {@link CellDispatcherOptions} beyond a Dispatcher's. */
export const CELL_DISPATCHER_DEFAULTS = Object.freeze({ loadCacheMs: 5 })

/** A worker of one cell, as {@link CellDispatcher.workerMetrics} reads it. */
export interface CellWorkerMetrics extends WorkerMetrics {
  /** The cell's index. */
  cell: number
}

/** How long a look-up by job id waits for its connection. */
const CONNECT_TIMEOUT_MS = 5_000

/**
 * One logical pool over many cells, each an ordinary pool on its own hash slot (so a Redis
 * Cluster spreads them over its primaries), with a Dispatcher of its own. A request with a
 * session goes to the session's cell (a hash of the session id), where the cell's affinity keeps
 * it on one worker; one without goes to the less loaded of two cells drawn at random. A job id
 * does not name its cell: `resume`, `cancel` and `getJob` look in every cell (one read per cell,
 * all at once, on one connection). See docs/cells.md.
 */
export class CellDispatcher<Req = unknown, Res = unknown> {
  /** The logical pool's name. */
  readonly pool: string
  /** The pool name of each cell, by index. */
  readonly cellPools: readonly string[]
  /** The dispatcher of each cell, by index. */
  readonly cells: readonly Dispatcher<Req, Res>[]
  readonly #keys: readonly PoolKeys[]
  readonly #conn: Connection
  readonly #load: CellLoad
  readonly #endTtlMs: number
  #connecting: Promise<void> | undefined
  #isClosed = false

  /** @throws HedgeyardError INVALID_ARGUMENT when an option is out of range. */
  constructor(options: CellDispatcherOptions) {
    const { cells, loadCacheMs, ...rest } = options
    this.pool = checkName('pool', options.pool)
    this.cellPools = cellPools(this.pool, checkCells(cells))
    const cacheMs = checkMs('loadCacheMs', loadCacheMs ?? CELL_DISPATCHER_DEFAULTS.loadCacheMs, 0)
    // Each cell's dispatcher checks the other options; one that fails leaves nothing open.
    notify(options.metrics, 'poolCells', this.pool, this.cellPools)
    this.cells = this.cellPools.map((pool) => new Dispatcher<Req, Res>({ ...rest, pool }))
    const prefix = options.prefix ?? 'hy'
    this.#keys = this.cellPools.map((pool) => poolKeys(prefix, pool))
    this.#endTtlMs = options.resultTtlMs ?? CANCEL_RESULT_TTL_MS
    this.#conn = createConnection(options.redis, 'command', `hy:cells:${this.cells[0]?.producerId}`)
    this.#load = new CellLoad(this.#conn, this.#keys, cacheMs, () => this.#connect())
  }

  /** The cell a session's requests go to. */
  cellOfSession(session: string): number {
    return sessionCell(session, this.cells.length)
  }

  /**
   * Sends `req` to a worker of the session's cell, or of the less loaded of two random cells, and
   * resolves with the handler's result: see {@link Dispatcher.submit}.
   * @throws HedgeyardError as Dispatcher.submit.
   */
  async submit(req: Req, options: SubmitOptions = {}): Promise<Res> {
    if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
    // A submit that must fail at once while Redis is away does not wait for a load read either.
    const cell =
      typeof options.session === 'string'
        ? this.cellOfSession(options.session)
        : options.onRedisUnavailable === 'reject'
          ? this.#load.pickNow()
          : await this.#load.pick()
    this.#load.sent(cell)
    try {
      return await (this.cells[cell] as Dispatcher<Req, Res>).submit(req, options)
    } finally {
      this.#load.settled(cell)
    }
  }

  /**
   * Streams `req` from a worker of the session's cell, or of the less loaded of two random cells
   * as last read (a stream returns at once, so it does not wait for a fresh read): see
   * {@link Dispatcher.stream}.
   * @throws HedgeyardError as Dispatcher.stream.
   */
  stream<Chunk = unknown, R = Res>(req: Req, options: SubmitOptions = {}): JobStream<Chunk, R> {
    if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
    const cell =
      typeof options.session === 'string' ? this.cellOfSession(options.session) : this.#load.pickNow()
    const stream = (this.cells[cell] as Dispatcher<Req, Res>).stream<Chunk, R>(req, options)
    this.#load.sent(cell)
    stream.result.then(
      () => this.#load.settled(cell),
      () => this.#load.settled(cell),
    )
    return stream
  }

  /**
   * Follows a streamed job by id, in whichever cell it is: see {@link Dispatcher.resume}. The cell
   * is found first (NOT_FOUND when none knows the job).
   * @throws HedgeyardError INVALID_ARGUMENT or CLOSED, at once.
   */
  resume<Chunk = unknown, R = Res>(jobId: string, options: ResumeOptions = {}): JobStream<Chunk, R> {
    if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
    checkKnownOptions('resume', options, ['after', 'timeoutMs', 'signal'])
    checkName('jobId', jobId)
    if (options.after !== undefined) checkInt('after', options.after, 0)
    if (options.timeoutMs !== undefined) checkMs('timeoutMs', options.timeoutMs, 1)
    return forwardStream<Chunk, R>(
      jobId,
      async () => {
        // A job no cell knows is resumed in cell 0, which ends it with NOT_FOUND.
        const cell = (await this.findJob(jobId)) ?? 0
        return (this.cells[cell] as Dispatcher<Req, Res>).resume<Chunk, R>(jobId, options)
      },
      () => void this.cancel(jobId).catch(() => {}),
    )
  }

  /**
   * The cell that knows a job: its result, its copies or its output stream are there. A plain job
   * (no session, hedge, retry, tenant or stream) is known only once it has a result.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async findJob(jobId: string): Promise<number | undefined> {
    const states = await this.#eachCell('findJob', jobId, (keys) => readJobState(this.#conn, keys, jobId))
    const cell = states.findIndex((s) => s.status !== 'unknown')
    return cell < 0 ? undefined : cell
  }

  /**
   * Where a job stands, in whichever cell it is: see {@link Dispatcher.getJob}.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async getJob(jobId: string): Promise<JobState> {
    const states = await this.#eachCell('getJob', jobId, (keys) => readJobState(this.#conn, keys, jobId))
    return states.find((s) => s.status !== 'unknown') ?? { status: 'unknown' }
  }

  /**
   * Cancels a job by id in whichever cell it is: every cell is asked, and only the one that holds
   * the job changes anything. See {@link Dispatcher.cancel}.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async cancel(jobId: string): Promise<CancelOutcome> {
    const end = { code: 'CANCELLED', message: 'the job was cancelled', resultTtlMs: this.#endTtlMs }
    const outcomes = await this.#eachCell('cancel', jobId, async (keys) =>
      outcomeOf(await endJob(this.#conn, keys, jobId, end)),
    )
    if (outcomes.includes('cancelled')) return 'cancelled'
    return outcomes.includes('finished') ? 'finished' : 'unknown'
  }

  /**
   * How many times a job's stream has been resumed, in whichever cell it is: see
   * {@link Dispatcher.resumes}.
   * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
   */
  async resumes(jobId: string): Promise<number> {
    const counts = await this.#eachCell('resumes', jobId, async (keys) =>
      Number((await this.#conn.get(resumedKey(keys, jobId))) ?? 0),
    )
    return counts.reduce((a, b) => a + b, 0)
  }

  /** The metrics of every worker of every cell, read from Redis. */
  async workerMetrics(): Promise<CellWorkerMetrics[]> {
    await this.#connect()
    try {
      const cells = await Promise.all(this.#keys.map((keys) => readWorkerMetrics(this.#conn, keys)))
      return cells.flatMap((workers, cell) => workers.map((w) => ({ ...w, cell })))
    } catch (err) {
      throw redisFailure(err, 'workerMetrics')
    }
  }

  /** Counters of every cell's dispatcher, summed (`autoDelayMs`: the largest). */
  stats(): DispatcherStats {
    const all = this.cells.map((d) => d.stats())
    const sum = { ...(all[0] as DispatcherStats) }
    for (const s of all.slice(1)) {
      for (const k of Object.keys(sum) as (keyof DispatcherStats)[]) {
        sum[k] = k === 'autoDelayMs' ? Math.max(sum[k], s[k]) : sum[k] + s[k]
      }
    }
    return sum
  }

  /** Stops taking submits, lets every cell's settle, then disconnects. */
  async close(): Promise<void> {
    if (this.#isClosed) return
    this.#isClosed = true
    await Promise.all(this.cells.map((d) => d.close()))
    this.#conn.disconnect()
  }

  /** Checks a job id, runs `read` on every cell at once, turns a Redis failure into a HedgeyardError. */
  async #eachCell<T>(what: string, jobId: string, read: (keys: PoolKeys) => Promise<T>): Promise<T[]> {
    if (this.#isClosed) throw new HedgeyardError('CLOSED', 'the dispatcher is closed')
    checkName('jobId', jobId)
    try {
      await this.#connect()
      return await Promise.all(this.#keys.map(read))
    } catch (err) {
      throw redisFailure(err, what)
    }
  }

  #connect(): Promise<void> {
    if (this.#conn.status === 'ready') return Promise.resolve()
    this.#connecting ??= connectReady(this.#conn, CONNECT_TIMEOUT_MS).finally(() => {
      this.#connecting = undefined
    })
    return this.#connecting
  }
}
