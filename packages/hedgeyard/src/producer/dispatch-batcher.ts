import type { PoolKeys } from '../protocol/keys.js'
import { callScript } from '../protocol/scripts/call.js'
import {
  DISPATCH,
  type DispatchCallSettings,
  type DispatchItem,
  type DispatchOutcome,
  dispatchArgs,
  parseDispatchReply,
} from '../protocol/scripts/dispatch.js'
import type { Connection } from '../redis/connection.js'

/**
 * Told what became of a job: the outcome, or the failure of the call that carried it. An object
 * rather than a callback, so that a job can be its own listener and a submit makes no closure.
 */
export interface DispatchListener {
  dispatched(err: unknown, outcome: DispatchOutcome | undefined): void
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
  readonly #settings: DispatchCallSettings
  #items: DispatchItem[] = []
  #listeners: DispatchListener[] = []
  #count = 0
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
      this.send(item, {
        dispatched: (err, outcome) => (err === undefined ? resolve(outcome as DispatchOutcome) : reject(err)),
      })
    })
  }

  /** The same as {@link dispatch} with a listener: no promise per job on the hot path. */
  send(item: DispatchItem, listener: DispatchListener): void {
    const i = this.#count++
    this.#items[i] = item
    this.#listeners[i] = listener
    if (!this.#isScheduled) {
      this.#isScheduled = true
      setImmediate(this.#flushBound)
    }
  }

  readonly #flushBound = () => this.#flush()

  #flush(): void {
    this.#isScheduled = false
    const count = this.#count
    const items = this.#items
    const listeners = this.#listeners
    if (items.length > count) {
      items.length = count
      listeners.length = count
    }
    // The next turn's batch is usually the size of this one: arrays of that size, filled by index,
    // are made once per turn instead of growing a few times each.
    this.#items = new Array(count)
    this.#listeners = new Array(count)
    this.#count = 0
    if (items.length <= MAX_BATCH) {
      this.#call(items, listeners)
      return
    }
    for (let start = 0; start < items.length; start += MAX_BATCH) {
      this.#call(items.slice(start, start + MAX_BATCH), listeners.slice(start, start + MAX_BATCH))
    }
  }

  #call(items: DispatchItem[], listeners: DispatchListener[]): void {
    this.#settings.seed = Math.floor(Math.random() * 2 ** 31)
    const call = dispatchArgs(this.#keys, this.#settings, items)
    callScript(this.#conn, DISPATCH, call.keys, call.args).then(
      (reply) => {
        let outcomes: DispatchOutcome[]
        try {
          outcomes = parseDispatchReply(reply, call.records, items.length)
        } catch (err) {
          for (const listener of listeners) listener.dispatched(err, undefined)
          return
        }
        for (let i = 0; i < listeners.length; i++)
          (listeners[i] as DispatchListener).dispatched(undefined, outcomes[i])
      },
      (err: unknown) => {
        for (const listener of listeners) listener.dispatched(err, undefined)
      },
    )
  }
}
