import type { Logger } from 'pino'
import type { JobEntry } from '../../protocol/codec.js'
import type { PoolKeys } from '../../protocol/keys.js'
import { drainWorkerKeys } from '../../protocol/scripts/drain.js'
import { type RescueMode, type RescueResult, rescueJobs } from '../../protocol/scripts/rescue.js'
import type { Connection } from '../../redis/connection.js'
import type { HeartbeatRoster } from './heartbeat.js'
import type { Registration } from './registration.js'

/** A worker as a drain sees it (a WorkerLoop). */
export interface DrainableWorker {
  readonly workerId: string
  /** Takes the entries read ahead and not started. */
  takeBacklog(): JobEntry[]
  /** Puts back, oldest first, entries no other worker took: they run here. */
  restoreBacklog(entries: JobEntry[]): void
  /** Reads what is left of its stream, runs it, and resolves once nothing is running. */
  drain(cmd: Connection): Promise<void>
  /** Aborts what still runs and closes its connection. */
  stop(cmd: Connection, reason: string): Promise<void>
}

/** How long a drain waits, and the rescue settings its hand-backs use. */
export interface DrainerSettings {
  /** How long running jobs may take to finish before they are aborted (ms). */
  drainTimeoutMs: number
  deadLetterCap: number
  resultTtlMs: number
}

/** Entries one hand-back moves at most: all of a worker's, in practice. */
const HANDBACK_BUDGET = 100_000

/**
 * Holds the workers of this process that have not stopped, and drains them, whether `close()` or
 * someone else (`hedgeyard drain`, seen by the heartbeat) asks: out of dispatch first, unread and
 * read-ahead jobs handed to other workers (what none has room for runs here), running jobs
 * finish (aborted after drainTimeoutMs), then the workers leave the pool.
 */
export class Drainer<W extends DrainableWorker> implements HeartbeatRoster {
  readonly #cmd: Connection
  readonly #keys: PoolKeys
  readonly #registration: Registration
  readonly #settings: DrainerSettings
  readonly #logger: Logger
  /** Settles once the last worker has stopped. */
  readonly stopped: Promise<void>
  #resolveStopped: () => void = () => {}
  /** Workers not stopped yet, by id; a drained worker leaves this map. */
  readonly #workers: Map<string, W>
  readonly #draining = new Map<string, Promise<void>>()

  constructor(
    cmd: Connection,
    keys: PoolKeys,
    registration: Registration,
    workers: readonly W[],
    settings: DrainerSettings,
    logger: Logger,
  ) {
    this.#cmd = cmd
    this.#keys = keys
    this.#registration = registration
    this.#workers = new Map(workers.map((w) => [w.workerId, w]))
    this.#settings = settings
    this.#logger = logger
    this.stopped = new Promise((resolve) => {
      this.#resolveStopped = resolve
    })
  }

  /** A worker not stopped yet. */
  get(workerId: string): W | undefined {
    return this.#workers.get(workerId)
  }

  leased(): string[] {
    return [...this.#workers.keys()]
  }

  isServing(workerId: string): boolean {
    return this.#workers.has(workerId) && !this.#draining.has(workerId)
  }

  drainAsked(workerIds: string[]): void {
    const fresh = workerIds.filter((id) => this.isServing(id))
    if (fresh.length === 0) return
    this.#logger.info({ workerIds: fresh }, 'asked to drain')
    void this.drain(fresh)
  }

  /** Drains every worker not stopped yet; settles when they all have. */
  drainAll(): Promise<void> {
    return this.drain([...this.#workers.keys()])
  }

  /** Drains `workerIds` (those already draining are waited for, not drained twice). */
  drain(workerIds: readonly string[]): Promise<void> {
    const fresh = workerIds.filter((id) => this.isServing(id))
    const waits = workerIds.map((id) => this.#draining.get(id)).filter((p) => p !== undefined)
    if (fresh.length > 0) {
      const run = this.#drainNow(fresh)
      for (const id of fresh) this.#draining.set(id, run)
      waits.push(run)
    }
    return Promise.all(waits).then(() => {})
  }

  #rescue(what: RescueMode): Promise<RescueResult> {
    const { deadLetterCap, resultTtlMs } = this.#settings
    return rescueJobs(this.#cmd, this.#keys, { budget: HANDBACK_BUDGET, deadLetterCap, resultTtlMs }, what)
  }

  async #drainNow(ids: string[]): Promise<void> {
    const workers = ids.map((id) => this.#workers.get(id) as W)
    try {
      // Out of dispatch first, then the unread jobs go to other workers; what no one has room
      // for stays and is run here.
      await drainWorkerKeys(this.#cmd, this.#keys, ids)
      await this.#rescue({ mode: 'handback', workerIds: ids })
    } catch (err) {
      this.#logger.warn({ err, workerIds: ids }, 'could not hand back unread jobs; running them here')
    }
    // Jobs read ahead (prefetch) were not started either: they go too, attempt unchanged, rather
    // than making the drain wait for them.
    await Promise.all(workers.map((w) => this.#returnReadAhead(w)))
    if (await this.#isTimedOut(Promise.all(workers.map((w) => w.drain(this.#cmd))))) {
      this.#logger.warn(
        { drainTimeoutMs: this.#settings.drainTimeoutMs },
        'drain timed out; aborting running jobs',
      )
    }
    await Promise.all(workers.map((w) => w.stop(this.#cmd, 'worker closing')))
    try {
      const statuses = await this.#registration.deregister(ids)
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
    for (const id of ids) this.#workers.delete(id)
    this.#logger.info({ workerIds: ids }, 'workers stopped')
    if (this.#workers.size === 0) this.#resolveStopped()
  }

  /** Whether `drained` took longer than drainTimeoutMs. */
  async #isTimedOut(drained: Promise<unknown>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), this.#settings.drainTimeoutMs)
    })
    const isTimedOut = await Promise.race([drained.then(() => false), timedOut])
    clearTimeout(timer)
    return isTimedOut
  }

  /** Hands a draining worker's read-ahead jobs to live workers; what none has room for runs here. */
  async #returnReadAhead(worker: W): Promise<void> {
    const entries = worker.takeBacklog()
    if (entries.length === 0) return
    let handled = 0
    try {
      const entryIds = entries.map((e) => e.entryId)
      handled = (await this.#rescue({ mode: 'return', workerId: worker.workerId, entryIds })).handled
    } catch (err) {
      this.#logger.warn(
        { err, workerId: worker.workerId },
        'could not hand back jobs read ahead; running them here',
      )
    }
    worker.restoreBacklog(entries.slice(handled))
  }
}
