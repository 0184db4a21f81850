import { type DispatchCallSettings, type DispatchItem, dispatchCallArgs } from '../protocol/dispatch-call.js'
import type { PoolKeys } from '../protocol/keys.js'
import { type Connection, redisFailure } from '../redis/connection.js'

/** What the dispatch script decided for one job. */
export type DispatchOutcome =
  | { status: 'queued'; workerId: string; isAffinityHit: boolean }
  | { status: 'SATURATED' | 'NO_WORKERS' }

/** Told what became of a job: the outcome, or the failure of the call that carried it. */
export type DispatchCallback = (err: unknown, outcome?: DispatchOutcome) => void

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
  readonly #settings: DispatchCallSettings
  #items: DispatchItem[] = []
  #callbacks: DispatchCallback[] = []
  #isScheduled = false

  constructor(
    conn: Connection,
    keys: PoolKeys,
    producerId: string,
    affinityTtlMs: number,
    resultTtlMs: number | undefined,
  ) {
    this.#conn = conn
    this.#keys = keys
    this.#settings = { producerId, affinityTtlMs, resultTtlMs, seed: 0 }
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
    this.#items.push(item)
    this.#callbacks.push(done)
    if (!this.#isScheduled) {
      this.#isScheduled = true
      setImmediate(this.#flushBound)
    }
  }

  readonly #flushBound = () => this.#flush()

  #flush(): void {
    this.#isScheduled = false
    const items = this.#items
    const callbacks = this.#callbacks
    this.#items = []
    this.#callbacks = []
    for (let start = 0; start < items.length; start += MAX_BATCH) {
      this.#call(items.slice(start, start + MAX_BATCH), callbacks.slice(start, start + MAX_BATCH))
    }
  }

  #call(items: DispatchItem[], callbacks: DispatchCallback[]): void {
    this.#settings.seed = Math.floor(Math.random() * 2 ** 31)
    const args = dispatchCallArgs(this.#keys, this.#settings, items)
    this.#conn.dispatch(...args).then(
      (reply) => {
        const out = reply as (string | number)[]
        for (let i = 0; i < callbacks.length; i++) {
          const target = String(out[i * 2])
          const done = callbacks[i] as DispatchCallback
          if (target === 'SATURATED' || target === 'NO_WORKERS') done(undefined, { status: target })
          else
            done(undefined, {
              status: 'queued',
              workerId: target,
              isAffinityHit: Number(out[i * 2 + 1]) === 1,
            })
        }
      },
      (err: unknown) => {
        const failure = redisFailure(err, 'dispatch')
        for (const done of callbacks) done(failure)
      },
    )
  }
}
