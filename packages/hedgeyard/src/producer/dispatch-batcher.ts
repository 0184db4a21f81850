import { type Logger, pino } from 'pino'
import { HedgeyardError } from '../protocol/errors.js'
import type { PoolKeys } from '../protocol/keys.js'
import { callScript } from '../protocol/scripts/call.js'
import {
  DISPATCH,
  type DispatchCallSettings,
  type DispatchItem,
  type DispatchOutcome,
  dispatchArgs,
  parseDispatchReply,
  readDispatchReceipt,
} from '../protocol/scripts/dispatch.js'
import { RECEIPT_SLOTS } from '../protocol/wire.js'
import type { Connection } from '../redis/connection.js'

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

/** One script call: its jobs, their listeners, and its number (the slot of its receipt). */
interface Call {
  number: number
  items: DispatchItem[]
  listeners: DispatchListener[]
  /** How its reply is read (see dispatchArgs), once sent: a job's timeout may change as it waits. */
  records?: number[]
  /** Which jobs wait for Redis, once the call has failed for want of it. */
  waits?: boolean[]
}

/** A job waiting for Redis, with the failure that made it wait. */
interface HeldJob {
  item: DispatchItem
  listener: DispatchListener
  err: HedgeyardError
}

/**
 * Gathers every job submitted during one turn of the event loop and dispatches them with a single
 * script call. A lone request pays no delay (the flush runs in the same turn, after I/O), while a
 * burst of submits costs one round trip instead of one per job.
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
  readonly #logger: Logger
  #items: DispatchItem[] = []
  #listeners: DispatchListener[] = []
  #count = 0
  #isScheduled = false
  #nextCall = 0
  #callsOut = 0
  /** Calls made while MAX_CALLS_OUT were out: sent as replies come back. */
  #waitingCalls: Call[] = []
  /** Calls that failed for want of Redis with a job that waits: whether they ran is not known yet. */
  #inDoubt: Call[] = []
  /** Jobs waiting for Redis to answer again, oldest first. */
  #held: HeldJob[] = []
  /** While Redis is away or calls are in doubt: the failure that says so. Nothing is sent then. */
  #failure: HedgeyardError | undefined
  /** Recoveries since the last call that Redis answered: each waits longer before it starts. */
  #recoveries = 0

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
    this.#logger = logger
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
    if (this.#failure !== undefined) {
      this.#hold(items, listeners, this.#failure)
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
        this.#recoveries = 0
        this.#callDone()
        this.#resolved(call, args.records, reply)
      },
      (err: unknown) => {
        // Failed first: a call in doubt stops the next one going, which could reuse its slot.
        this.#failed(call, err)
        this.#callDone()
      },
    )
  }

  /** A call came back: the next call waiting for a free slot goes, unless Redis is away. */
  #callDone(): void {
    this.#callsOut--
    const next = this.#waitingCalls.shift()
    if (next === undefined) return
    if (this.#failure !== undefined) this.#hold(next.items, next.listeners, this.#failure)
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

  /**
   * A call failed. Without Redis, the jobs that wait make it a call in doubt, resolved by its
   * receipt once Redis answers again; the others, and every job of a call Redis refused, fail now.
   */
  #failed(call: Call, err: unknown): void {
    const failure = err instanceof HedgeyardError && err.code === 'REDIS_UNAVAILABLE' ? err : undefined
    let waits: boolean[] | undefined
    for (let i = 0; i < call.listeners.length; i++) {
      const listener = call.listeners[i] as DispatchListener
      if (failure !== undefined && listener.waitsForRedis?.(failure) === true) {
        waits ??= new Array<boolean>(call.listeners.length).fill(false)
        waits[i] = true
      } else listener.dispatched(err, undefined)
    }
    if (waits === undefined || failure === undefined) return
    call.waits = waits
    this.#inDoubt.push(call)
    this.#waitForRedis(failure)
  }

  /** Holds the jobs that wait for Redis; the others fail with `err` at once. */
  #hold(items: DispatchItem[], listeners: DispatchListener[], err: HedgeyardError): void {
    for (let i = 0; i < items.length; i++) {
      const listener = listeners[i] as DispatchListener
      if (listener.waitsForRedis?.(err) === true)
        this.#held.push({ item: items[i] as DispatchItem, listener, err })
      else listener.dispatched(err, undefined)
    }
  }

  /** Starts waiting for Redis, unless already waiting: nothing is sent until it is back. */
  #waitForRedis(err: HedgeyardError): void {
    if (this.#failure !== undefined) return
    this.#failure = err
    this.#recoveries++
    this.#recover().catch((e: unknown) => this.#logger.error({ err: e }, 'dispatch recovery failed'))
  }

  /**
   * Once Redis answers, reads the receipt of every call in doubt, oldest first: a call that ran
   * gives its waiting jobs their outcomes, one that did not gives them back to the held jobs; then
   * the held jobs are sent again. A Redis that answers but refuses to serve (LOADING, NOREPLICAS)
   * would make this a loop: each recovery since the last answered call starts later than the last.
   */
  async #recover(): Promise<void> {
    const delayMs = this.#recoveries <= 1 ? 0 : Math.min(25 * 2 ** this.#recoveries, MAX_RECOVERY_DELAY_MS)
    if (delayMs > 0) await sleep(delayMs)
    // A call still out when Redis went away may fail while this runs: it joins the calls in doubt,
    // and nothing is sent again before it too is resolved.
    do {
      await this.#resolveInDoubt()
      await whenReady(this.#conn)
    } while (this.#inDoubt.length > 0)
    this.#failure = undefined
    const held = this.#held
    this.#held = []
    if (held.length > 0)
      this.#logger.info({ jobs: held.length }, 'Redis is back; sending the jobs that waited')
    // Each asked again: a job that settled meanwhile (its deadline passed) is dropped, the others
    // go with what is left of their time.
    for (const job of held) {
      if (job.listener.waitsForRedis?.(job.err) === true) this.send(job.item, job.listener)
      else job.listener.dispatched(job.err, undefined)
    }
  }

  /** Reads the receipt of each call in doubt, oldest first, as soon as Redis answers. */
  async #resolveInDoubt(): Promise<void> {
    let failures = 0
    while (this.#inDoubt.length > 0) {
      await whenReady(this.#conn)
      const call = this.#inDoubt[0] as Call
      const waits = call.waits as boolean[]
      let reply: unknown[] | undefined
      try {
        reply = await readDispatchReceipt(this.#conn, this.#keys, this.#settings.producerId, call.number)
      } catch (err) {
        if (err instanceof HedgeyardError && err.code === 'REDIS_UNAVAILABLE') {
          await sleep(Math.min(25 * 2 ** failures++, MAX_RECOVERY_DELAY_MS))
          continue
        }
        // The receipt cannot be read (an ACL, a broken receipt): its jobs fail as they would have
        // without waiting, for sending them again could queue them twice.
        this.#inDoubt.shift()
        for (let i = 0; i < waits.length; i++) if (waits[i]) call.listeners[i]?.dispatched(err, undefined)
        continue
      }
      this.#inDoubt.shift()
      if (reply !== undefined) {
        this.#logger.debug({ call: call.number }, 'a dispatch whose reply was lost had run')
        this.#resolved(call, call.records as number[], reply, waits)
        continue
      }
      const err = this.#failure as HedgeyardError
      for (let i = 0; i < waits.length; i++) {
        if (waits[i])
          this.#held.push({
            item: call.items[i] as DispatchItem,
            listener: call.listeners[i] as DispatchListener,
            err,
          })
      }
    }
  }
}

/** Longest wait between two reads of a receipt, or before a recovery starts. */
const MAX_RECOVERY_DELAY_MS = 1_000

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Resolves once the connection is ready: at once, or on its next 'ready' (ioredis reconnects by itself). */
function whenReady(conn: Connection): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve()
  return new Promise((resolve) => conn.once('ready', () => resolve()))
}
