import type { Logger } from 'pino'
import { HedgeyardError } from '../protocol/errors.js'
import type { PoolKeys } from '../protocol/keys.js'
import { type DispatchItem, readDispatchReceipt } from '../protocol/scripts/dispatch.js'
import type { Connection } from '../redis/connection.js'
import type { DispatchListener } from './dispatch-batcher.js'

/** One dispatch script call: its jobs, their listeners, and its number (the slot of its receipt). */
export interface Call {
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

/** What a RedisWait needs of its batcher. */
export interface RedisWaitDeps {
  /** A call in doubt ran: its receipt's reply, for the jobs that waited (`only`). */
  resolved(call: Call, reply: unknown, only: boolean[]): void
  /** Sends a job again (with the next call). */
  send(item: DispatchItem, listener: DispatchListener): void
}

/**
 * The dispatches of a producer while Redis cannot be reached (see DispatchBatcher): the jobs that
 * wait for it (onRedisUnavailable 'wait') are held, and the calls that failed for want of it are in
 * doubt, for their replies may have been lost after they ran. Once Redis answers again, the receipt
 * of each call in doubt says whether it ran (and what it decided) before anything is sent again;
 * then the held jobs go. While it waits, its batcher sends nothing.
 */
export class RedisWait {
  readonly #conn: Connection
  readonly #keys: PoolKeys
  readonly #producerId: string
  readonly #logger: Logger
  readonly #deps: RedisWaitDeps
  /** Calls that failed for want of Redis with a job that waits: whether they ran is not known yet. */
  #inDoubt: Call[] = []
  /** Jobs waiting for Redis to answer again, oldest first. */
  #held: HeldJob[] = []
  /** While Redis is away or calls are in doubt: the failure that says so. */
  #failure: HedgeyardError | undefined
  /** Recoveries since the last call that Redis answered: each waits longer before it starts. */
  #recoveries = 0

  constructor(conn: Connection, keys: PoolKeys, producerId: string, logger: Logger, deps: RedisWaitDeps) {
    this.#conn = conn
    this.#keys = keys
    this.#producerId = producerId
    this.#logger = logger
    this.#deps = deps
  }

  /** While Redis is away or calls are in doubt, the failure that says so: nothing is to be sent. */
  get failure(): HedgeyardError | undefined {
    return this.#failure
  }

  /** Redis answered a call: the next recovery, if any, starts at once. */
  answered(): void {
    this.#recoveries = 0
  }

  /**
   * A call failed. Without Redis, the jobs that wait make it a call in doubt, resolved by its
   * receipt once Redis answers again; the others, and every job of a call Redis refused, fail now.
   */
  callFailed(call: Call, err: unknown): void {
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
  hold(items: DispatchItem[], listeners: DispatchListener[], err: HedgeyardError): void {
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
      if (job.listener.waitsForRedis?.(job.err) === true) this.#deps.send(job.item, job.listener)
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
        reply = await readDispatchReceipt(this.#conn, this.#keys, this.#producerId, call.number)
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
        this.#deps.resolved(call, reply, waits)
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
