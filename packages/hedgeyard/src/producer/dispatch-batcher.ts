import { type Logger, pino } from 'pino'
import type { HedgeyardError } from '../protocol/errors.js'
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
import { RECEIPT_SLOTS } from '../protocol/wire.js'
import type { Connection } from '../redis/connection.js'
import { type Call, RedisWait } from './redis-wait.js'

/**
 * Told what became of a job: the outcome, or the failure of the call that carried it. An object
 * rather than a callback, so that a job can be its own listener and a submit makes no closure.
 */
export interface DispatchListener {
  dispatched(err: unknown, outcome: DispatchOutcome | undefined): void
  /**
   * Redis could not be reached for the job's call (`err`, REDIS_UNAVAILABLE): whether the job waits
   * for Redis to come back, to be sent again then (onRedisUnavailable 'wait'). Asked when the call
   * fails, and again just before the job is sent again, when the job also brings its `timeoutMs` up
   * to date (what is left before its deadline). False when it chose 'reject', has settled, or has
   * no time left: it is then told the failure through `dispatched`. Without it a job fails at once.
   */
  waitsForRedis?(err: HedgeyardError): boolean
}

/** Jobs per script call: bounds how long one call holds Redis. */
const MAX_BATCH = 256

/**
 * Calls out at once, at most: the receipt of a call whose reply was lost must still be in its slot
 * when the producer reads it, so no later call may have reused the slot.
 */
const MAX_CALLS_OUT = RECEIPT_SLOTS

/** Margin of the receipts' TTL over the longest timeout the producer has sent. */
const RECEIPT_MARGIN_MS = 60_000

/**
 * Gathers every job submitted during one turn of the event loop and dispatches them with a single
 * script call, up to MAX_BATCH jobs: a call that is full goes at once, in the caller's turn. A
 * lone request pays no delay (the flush runs in the same turn, after I/O), while a burst of
 * submits costs one round trip per MAX_BATCH jobs instead of one per job.
 *
 * When Redis cannot be reached, the jobs that wait for it (onRedisUnavailable 'wait') are held, and
 * nothing is sent until it answers again. A call that failed that way may have run, its reply lost
 * with the connection: before anything of it is sent again, its receipt (see dispatch.lua) says
 * whether it ran and, if it did, what it decided. A lost reply never queues a job twice.
 */
export class DispatchBatcher {
  readonly #conn: Connection
  readonly #keys: PoolKeys
  readonly #settings: DispatchCallSettings & { callNumber: number; receiptTtlMs: number }
  #items: DispatchItem[] = []
  #listeners: DispatchListener[] = []
  #count = 0
  #isScheduled = false
  #nextCall = 0
  #callsOut = 0
  /** Calls made while MAX_CALLS_OUT were out: sent as replies come back. */
  #waitingCalls: Call[] = []
  /** The jobs that wait while Redis is away, and the calls in doubt. */
  readonly #wait: RedisWait

  constructor(
    conn: Connection,
    keys: PoolKeys,
    producerId: string,
    affinityTtlMs: number,
    resultTtlMs: number | undefined,
    logger: Logger = pino({ level: 'silent' }),
  ) {
    this.#conn = conn
    this.#keys = keys
    this.#wait = new RedisWait(conn, keys, producerId, logger, {
      resolved: (call, reply, only) => this.#resolved(call, call.records as number[], reply, only),
      send: (item, listener) => this.send(item, listener),
    })
    this.#settings = {
      producerId,
      affinityTtlMs,
      resultTtlMs,
      seed: 0,
      callNumber: 0,
      receiptTtlMs: RECEIPT_MARGIN_MS,
    }
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
    // A full call goes at once: a caller that submits thousands in one turn has Redis and the
    // workers start on the first jobs while it makes the others.
    if (i + 1 === MAX_BATCH) this.#flush()
    else if (!this.#isScheduled) {
      this.#isScheduled = true
      setImmediate(this.#flushBound)
    }
  }

  readonly #flushBound = () => this.#flush()

  #flush(): void {
    const count = this.#count
    if (count === 0) {
      this.#isScheduled = false
      return
    }
    // A flush of a full call leaves the turn's flush scheduled, for what comes after it.
    if (count < MAX_BATCH) this.#isScheduled = false
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
    const failure = this.#wait.failure
    if (failure !== undefined) {
      this.#wait.hold(items, listeners, failure)
      return
    }
    if (items.length <= MAX_BATCH) {
      this.#call(items, listeners)
      return
    }
    for (let start = 0; start < items.length; start += MAX_BATCH) {
      this.#call(items.slice(start, start + MAX_BATCH), listeners.slice(start, start + MAX_BATCH))
    }
  }

  #call(items: DispatchItem[], listeners: DispatchListener[]): void {
    const call: Call = { number: this.#nextCall++, items, listeners }
    if (this.#callsOut >= MAX_CALLS_OUT) this.#waitingCalls.push(call)
    else this.#send(call)
  }

  #send(call: Call): void {
    this.#callsOut++
    const settings = this.#settings
    settings.seed = Math.floor(Math.random() * 2 ** 31)
    settings.callNumber = call.number
    // The receipts live at least as long as the longest job sent may wait: a later call never
    // shortens the life of an earlier one's receipt.
    for (const item of call.items) {
      if (item.timeoutMs + RECEIPT_MARGIN_MS > settings.receiptTtlMs)
        settings.receiptTtlMs = item.timeoutMs + RECEIPT_MARGIN_MS
    }
    const args = dispatchArgs(this.#keys, settings, call.items)
    call.records = args.records
    callScript(this.#conn, DISPATCH, args.keys, args.args).then(
      (reply) => {
        this.#wait.answered()
        this.#callDone()
        this.#resolved(call, args.records, reply)
      },
      (err: unknown) => {
        // Failed first: a call in doubt stops the next one going, which could reuse its slot.
        this.#wait.callFailed(call, err)
        this.#callDone()
      },
    )
  }

  /** A call came back: the next call waiting for a free slot goes, unless Redis is away. */
  #callDone(): void {
    this.#callsOut--
    const next = this.#waitingCalls.shift()
    if (next === undefined) return
    const failure = this.#wait.failure
    if (failure !== undefined) this.#wait.hold(next.items, next.listeners, failure)
    else this.#send(next)
  }

  /** A call's reply, from Redis or from its receipt: each job (each waiting one, `only`) is told its outcome. */
  #resolved(call: Call, records: number[], reply: unknown, only?: boolean[]): void {
    const { items, listeners } = call
    let outcomes: DispatchOutcome[] | undefined
    let error: unknown
    try {
      outcomes = parseDispatchReply(reply, records, items.length)
    } catch (err) {
      error = err
    }
    for (let i = 0; i < listeners.length; i++) {
      if (only !== undefined && only[i] !== true) continue
      ;(listeners[i] as DispatchListener).dispatched(error, outcomes?.[i])
    }
  }
}
