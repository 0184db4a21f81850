import type { PoolKeys } from '../protocol/keys.js'
import { type Connection, redisFailure } from '../redis/connection.js'

/** One job waiting for the next dispatch call. */
export interface DispatchItem {
  jobId: string
  session: string
  payload: string
  timeoutMs: number
  attempt: number
  /** Past this many attempts (a worker lost with the job each time) the job is dead-lettered. */
  maxAttempts: number
  /** Workers this copy must not go to, joined by ','; '' for none. */
  exclude: string
  /** '' for a plain job, 'h' when copies may race, 't' for tied copies. */
  race: '' | 'h' | 't'
  /** Copies to queue at once, each on another worker (2 for tied). */
  copies: number
}

/** What the dispatch script decided for one job. */
export type DispatchOutcome =
  | { status: 'queued'; workerId: string; isAffinityHit: boolean }
  | { status: 'SATURATED' | 'NO_WORKERS' }

/** Told what became of a job: the outcome, or the failure of the call that carried it. */
export type DispatchCallback = (err: unknown, outcome?: DispatchOutcome) => void

interface Waiting {
  item: DispatchItem
  done: DispatchCallback
}

/** Jobs per script call: bounds how long one call holds Redis. */
const MAX_BATCH = 256

/**
 * Gathers every job submitted during one turn of the event loop and dispatches them with a single
 * script call. A lone request pays no delay (the flush runs in the same turn, after I/O), while a
 * burst of submits costs one round trip instead of one per job.
 */
export class DispatchBatcher {
  readonly #conn: Connection
  readonly #keys: PoolKeys
  readonly #producerId: string
  readonly #affinityTtlMs: number
  readonly #resultTtlMs: number
  #waiting: Waiting[] = []
  #isScheduled = false

  constructor(
    conn: Connection,
    keys: PoolKeys,
    producerId: string,
    affinityTtlMs: number,
    resultTtlMs: number,
  ) {
    this.#conn = conn
    this.#keys = keys
    this.#producerId = producerId
    this.#affinityTtlMs = affinityTtlMs
    this.#resultTtlMs = resultTtlMs
  }

  /** Queues a job for the dispatch call of this turn. */
  dispatch(item: DispatchItem): Promise<DispatchOutcome> {
    return new Promise((resolve, reject) => {
      this.send(item, (err, outcome) =>
        err === undefined ? resolve(outcome as DispatchOutcome) : reject(err),
      )
    })
  }

  /** The same as {@link dispatch} with a callback: no promise per job on the hot path. */
  send(item: DispatchItem, done: DispatchCallback): void {
    this.#waiting.push({ item, done })
    if (!this.#isScheduled) {
      this.#isScheduled = true
      setImmediate(this.#flushBound)
    }
  }

  readonly #flushBound = () => this.#flush()

  #flush(): void {
    this.#isScheduled = false
    const all = this.#waiting
    this.#waiting = []
    for (let start = 0; start < all.length; start += MAX_BATCH) {
      this.#call(all.slice(start, start + MAX_BATCH))
    }
  }

  #call(batch: Waiting[]): void {
    const k = this.#keys
    const args: (string | number)[] = [
      k.load,
      k.ready,
      k.alive,
      k.base,
      this.#affinityTtlMs,
      Math.floor(Math.random() * 2 ** 31),
      this.#producerId,
      this.#resultTtlMs,
      batch.length,
    ]
    for (const { item } of batch) {
      args.push(
        item.jobId,
        item.session,
        item.payload,
        item.timeoutMs,
        item.attempt,
        item.maxAttempts,
        item.exclude,
        item.race,
        item.copies,
      )
    }
    this.#conn.dispatch(...args).then(
      (reply) => {
        const out = reply as (string | number)[]
        for (let i = 0; i < batch.length; i++) {
          const target = String(out[i * 2])
          const waiting = batch[i] as Waiting
          if (target === 'SATURATED' || target === 'NO_WORKERS') waiting.done(undefined, { status: target })
          else
            waiting.done(undefined, {
              status: 'queued',
              workerId: target,
              isAffinityHit: Number(out[i * 2 + 1]) === 1,
            })
        }
      },
      (err: unknown) => {
        const failure = redisFailure(err, 'dispatch')
        for (const waiting of batch) waiting.done(failure)
      },
    )
  }
}
