import type { Logger } from 'pino'
import type { PoolKeys } from '../protocol/keys.js'
import type { Connection } from '../redis/connection.js'

/**
 * How a job ended on the worker: 'ok' / 'err' ran the handler; 'skip' did not run it; 'dead'
 * cannot run it (the entry goes to the dead letters, the envelope field holding the reason).
 */
export type Outcome = 'ok' | 'err' | 'skip' | 'dead'

/** One finished job waiting for the next complete call. */
export interface Completion {
  workerId: string
  entryId: string
  jobId: string
  producer: string
  outcome: Outcome
  envelope: string
  /** The entry's race mode ('' for a plain job), and which copy it is. */
  race: string
  copy: number
  /** The result TTL the producer asked for, or undefined for the worker's. */
  resultTtlMs?: number | undefined
}

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
  readonly #resultTtlMs: number
  readonly #deadLetterCap: number
  readonly #logger: Logger
  #queue: Completion[] = []
  #isScheduled = false
  #inFlight = 0
  #isClosed = false
  #idleWaiters: (() => void)[] = []

  constructor(conn: Connection, keys: PoolKeys, resultTtlMs: number, deadLetterCap: number, logger: Logger) {
    this.#conn = conn
    this.#keys = keys
    this.#resultTtlMs = resultTtlMs
    this.#deadLetterCap = deadLetterCap
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
    const k = this.#keys
    const { args, batch } = completeRecords(
      [k.load, k.ready, k.dead, k.base, this.#resultTtlMs, this.#deadLetterCap, jobs.length],
      jobs,
    )
    for (let attempt = 0; ; attempt++) {
      try {
        const statuses = (await this.#conn.complete(...args)) as string[]
        statuses.forEach((status, i) => {
          if (status === 'LOST') {
            const c = batch[i] as Completion
            this.#logger.warn(
              { workerId: c.workerId, jobId: c.jobId },
              'completion rejected: the job was no longer held by this worker',
            )
          }
        })
        break
      } catch (err) {
        if (this.#isClosed) {
          this.#logger.warn(
            { err, jobs: batch.length },
            'worker closed before its completions could be stored',
          )
          break
        }
        const delayMs = Math.min(50 * 2 ** attempt, MAX_BACKOFF_MS)
        if (attempt === 0 || attempt % 10 === 0) {
          this.#logger.warn({ err, jobs: batch.length, attempt }, 'completing jobs failed; retrying')
        }
        await new Promise((r) => setTimeout(r, delayMs))
      }
    }
    this.#inFlight--
    if (this.#inFlight === 0 && this.#queue.length === 0) {
      const waiters = this.#idleWaiters
      this.#idleWaiters = []
      for (const w of waiters) w()
    }
  }
}

/**
 * Appends the complete script's records for `jobs` to `args` (see the header of complete.lua):
 * completions of plain jobs that share a worker, a producer, an outcome and a result TTL become
 * one 'p' group of three arguments per job; any other an 'f' record of nine. Returns the jobs in
 * the order of the records, which is the order of the script's statuses.
 */
function completeRecords(
  args: (string | number)[],
  jobs: readonly Completion[],
): { args: (string | number)[]; batch: Completion[] } {
  const batch: Completion[] = []
  const groups = new Map<string, Completion[]>()
  for (const c of jobs) {
    if (c.race !== '') {
      batch.push(c)
      args.push(
        'f',
        c.workerId,
        c.entryId,
        c.jobId,
        c.producer,
        c.outcome,
        c.envelope,
        c.race,
        c.copy,
        c.resultTtlMs ?? '',
      )
      continue
    }
    const key = `${c.workerId} ${c.producer} ${c.outcome} ${c.resultTtlMs ?? ''}`
    const group = groups.get(key)
    if (group === undefined) groups.set(key, [c])
    else group.push(c)
  }
  for (const group of groups.values()) {
    const first = group[0] as Completion
    args.push('p', first.workerId, first.producer, first.outcome, first.resultTtlMs ?? '', group.length)
    for (const c of group) {
      batch.push(c)
      args.push(c.entryId, c.jobId, c.envelope)
    }
  }
  return { args, batch }
}
