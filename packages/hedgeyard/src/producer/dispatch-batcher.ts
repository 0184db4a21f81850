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
    const call = dispatchArgs(this.#keys, this.#settings, items)
    callScript(this.#conn, DISPATCH, call.keys, call.args).then(
      (reply) => {
        let outcomes: DispatchOutcome[]
        try {
          outcomes = parseDispatchReply(reply, items.length)
        } catch (err) {
          for (const done of callbacks) done(err)
          return
        }
        for (let i = 0; i < callbacks.length; i++) (callbacks[i] as DispatchCallback)(undefined, outcomes[i])
      },
      (err: unknown) => {
        for (const done of callbacks) done(err)
      },
    )
  }
}
