import type { Logger } from 'pino'
import type { PoolKeys } from '../protocol/keys.js'
import { type CompleteSettings, type Completion, completeJobs } from '../protocol/scripts/complete.js'
import type { Connection } from '../redis/connection.js'

const MAX_BATCH = 256
const MAX_BACKOFF_MS = 2_000

/**
 * Completes every job that finished during one event-loop turn with a single script call. A call
 * that fails (Redis unreachable) is retried with backoff: an entry stays pending until its
 * completion is stored, so nothing is lost while Redis is away.
 */
export class Completer {
  readonly #conn: Connection
  readonly #keys: PoolKeys
  readonly #settings: CompleteSettings
  readonly #logger: Logger
  #queue: Completion[] = []
  #isScheduled = false
  #inFlight = 0
  /** The batches being stored (or retried while Redis is away). */
  readonly #sending = new Set<Completion[]>()
  #isClosed = false
  #idleWaiters: (() => void)[] = []

  constructor(conn: Connection, keys: PoolKeys, resultTtlMs: number, deadLetterCap: number, logger: Logger) {
    this.#conn = conn
    this.#keys = keys
    this.#settings = { resultTtlMs, deadLetterCap }
    this.#logger = logger
  }

  /** Queues a completion for this turn's call. */
  complete(c: Completion): void {
    this.#queue.push(c)
    if (!this.#isScheduled) {
      this.#isScheduled = true
      setImmediate(() => this.#flush())
    }
  }

  /**
   * Whether the outcome of an entry waits to be stored: its job has run. Its entry is still pending
   * in Redis until then, and a worker that reads its pending entries again (after a reconnect)
   * must not run it twice. Looked up only then: a scan, not an index kept on every completion.
   */
  isStoring(workerId: string, entryId: string): boolean {
    const matches = (c: Completion) => c.entryId === entryId && c.workerId === workerId
    if (this.#queue.some(matches)) return true
    for (const batch of this.#sending) if (batch.some(matches)) return true
    return false
  }

  /** Resolves once every queued completion has been stored, or after `timeoutMs`. */
  idle(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.#queue.length === 0 && this.#inFlight === 0) return Promise.resolve()
    return new Promise((resolve) => {
      this.#idleWaiters.push(resolve)
      if (Number.isFinite(timeoutMs)) setTimeout(resolve, timeoutMs).unref()
    })
  }

  /**
   * Stops retrying: completions not stored by now are given up. Their entries stay pending, so
   * the job runs again when the worker restarts with the same id or is rescued (at least once).
   */
  close(): void {
    this.#isClosed = true
  }

  #flush(): void {
    this.#isScheduled = false
    const all = this.#queue
    this.#queue = []
    for (let start = 0; start < all.length; start += MAX_BATCH) {
      void this.#send(all.slice(start, start + MAX_BATCH))
    }
  }

  async #send(jobs: Completion[]): Promise<void> {
    this.#inFlight++
    this.#sending.add(jobs)
    for (let attempt = 0; ; attempt++) {
      try {
        const { order, statuses } = await completeJobs(this.#conn, this.#keys, this.#settings, jobs)
        for (let i = 0; i < statuses.length; i++) {
          if (statuses[i] === 'LOST') {
            const c = order[i] as Completion
            // After a failed attempt, the call that failed may have stored it, its reply lost.
            if (attempt > 0) {
              this.#logger.debug(
                { workerId: c.workerId, entryId: c.entryId },
                'completion already stored by an attempt whose reply was lost, or the job was rescued',
              )
              continue
            }
            this.#logger.warn(
              { workerId: c.workerId, entryId: c.entryId },
              'completion rejected: the job was no longer held by this worker',
            )
          }
        }
        break
      } catch (err) {
        if (this.#isClosed) {
          this.#logger.warn(
            { err, jobs: jobs.length },
            'worker closed before its completions could be stored',
          )
          break
        }
        const delayMs = Math.min(50 * 2 ** attempt, MAX_BACKOFF_MS)
        if (attempt === 0 || attempt % 10 === 0) {
          this.#logger.warn({ err, jobs: jobs.length, attempt }, 'completing jobs failed; retrying')
        }
        await new Promise((r) => setTimeout(r, delayMs))
      }
    }
    this.#sending.delete(jobs)
    this.#inFlight--
    if (this.#inFlight === 0 && this.#queue.length === 0) {
      const waiters = this.#idleWaiters
      this.#idleWaiters = []
      for (const w of waiters) w()
    }
  }
}
