import type { Logger } from 'pino'
import { decodeEnvelope, type Envelope } from '../protocol/codec.js'
import { copyResultKey, type PoolKeys, resultKey } from '../protocol/keys.js'
import { NOT_PLAIN_SUCCESS, successValueAt } from '../protocol/success-envelope.js'
import { type Connection, connectReady, onMessage, redisFailure, subscribeTo } from '../redis/connection.js'
import { PUSH_MARK } from './stream-pushes.js'
import { WaitingJobs } from './waiting-jobs.js'

/** Receives the envelope of a job's result. */
export interface ResultHandler {
  onEnvelope(envelope: Envelope): void
  /**
   * A success as a worker writes it, with no cost reported: only its value, which is all a plain
   * job needs (the envelope is then not decoded). Without it, every result is an envelope.
   */
  onValue?(value: unknown): void
}

const NEWLINE = 0x0a
const SPACE = 0x20

const RECOVER_CHUNK = 500

/**
 * Receives this producer's results over pub/sub and, after every (re)subscribe, re-reads
 * `res:<jobId>` of every job still waiting, so a result published while the subscriber was
 * disconnected is not lost: pub/sub is the fast path, the result key the durable one.
 */
export class ResultListener {
  readonly #sub: Connection
  readonly #cmd: Connection
  readonly #keys: PoolKeys
  readonly #channel: string
  readonly #channelBytes: Buffer
  readonly #logger: Logger
  readonly #waiting = new WaitingJobs<ResultHandler>()
  /** For racing jobs only: how many copies were sent (each failed copy has its own result key). */
  readonly #copiesSent = new Map<string, () => number>()
  #hasSubscribedOnce = false
  /** Receives the messages of pushes (streams' chunks and ends) and hears of a resubscribe. */
  #pushes: { onMessage(message: Buffer): void; handOverAll(why: string): void } | undefined
  /** Told how many result lines each message held: each is a job of this producer that ended. */
  onFreed: ((count: number) => void) | undefined

  constructor(sub: Connection, cmd: Connection, keys: PoolKeys, channel: string, logger: Logger) {
    this.#sub = sub
    this.#cmd = cmd
    this.#keys = keys
    this.#channel = channel
    this.#channelBytes = Buffer.from(channel)
    this.#logger = logger
    // The message's bytes, not its text: a line is looked up by its id's bytes, and most results
    // are read by parsing their value alone, so the message is never made a string.
    onMessage(sub, (channel, message) => {
      if (channel.equals(this.#channelBytes)) this.#onMessage(message)
    })
    sub.on('ready', () => {
      // ioredis resubscribes by itself after a reconnect; subscribing again resolves once the
      // server confirms, and only then is the recovery read free of a gap.
      if (this.#hasSubscribedOnce) void this.#resubscribeAndRecover()
    })
  }

  /**
   * Connects and subscribes; results of jobs dispatched after this resolves cannot be missed.
   * @throws HedgeyardError REDIS_UNAVAILABLE, REDIS_AUTH, REDIS_TLS, or REDIS_NOPERM when the ACL
   * user may not subscribe to the results channel.
   */
  async start(timeoutMs: number): Promise<void> {
    await connectReady(this.#sub, timeoutMs)
    try {
      await subscribeTo(this.#sub, [this.#channel])
    } catch (err) {
      throw redisFailure(err, `subscribing to ${this.#channel}`)
    }
    this.#hasSubscribedOnce = true
  }

  /** Where messages of pushes go (they begin with '~'); without it they are dropped. */
  setPushes(pushes: { onMessage(message: Buffer): void; handOverAll(why: string): void }): void {
    this.#pushes = pushes
  }

  /** Number of jobs waiting for a result. */
  get size(): number {
    return this.#waiting.size
  }

  /**
   * Waits for the result of `jobId`. A plain job's handler is called once. A racing job's handler
   * is called for every copy's result (failed copies too, possibly twice after a recovery) until
   * `forget`; `copiesSent` tells the recovery which per-copy keys to read.
   */
  expect(jobId: string, handler: ResultHandler, copiesSent?: () => number): void {
    this.#waiting.set(jobId, handler)
    if (copiesSent) this.#copiesSent.set(jobId, copiesSent)
  }

  /** Stops waiting for `jobId` (it timed out or was aborted). */
  forget(jobId: string): void {
    this.#waiting.delete(jobId)
    this.#copiesSent.delete(jobId)
  }

  /** Re-reads the result key of every waiting job and delivers what is there. */
  recover(): Promise<number> {
    return this.recoverJobs(this.#waiting.ids())
  }

  /**
   * Re-reads the result keys of `jobIds` (those still waiting) and delivers what is there: a
   * result stored but never published (its PUBLISH refused, say) is found this way.
   */
  async recoverJobs(jobIds: readonly string[]): Promise<number> {
    const reads: { jobId: string; key: string }[] = []
    for (const jobId of jobIds) {
      if (this.#waiting.get(jobId) === undefined) continue
      // Failed copies first, so that a success read in the same pass is delivered last and wins.
      for (let k = 1; k <= (this.#copiesSent.get(jobId)?.() ?? 0); k++)
        reads.push({ jobId, key: copyResultKey(this.#keys, jobId, k) })
      reads.push({ jobId, key: resultKey(this.#keys, jobId) })
    }
    let found = 0
    for (let start = 0; start < reads.length; start += RECOVER_CHUNK) {
      const chunk = reads.slice(start, start + RECOVER_CHUNK)
      const values = await this.#cmd.mget(...chunk.map((r) => r.key))
      chunk.forEach(({ jobId }, i) => {
        const text = values[i]
        if (text != null) {
          found++
          this.#deliver(jobId, text)
        }
      })
    }
    return found
  }

  /**
   * A message holds one line `<jobId> <envelope>` per result of one complete call, or, beginning
   * with '~', a streams' pushes (stream-pushes.ts).
   */
  #onMessage(message: Buffer): void {
    if (message[0] === PUSH_MARK) {
      this.#pushes?.onMessage(message)
      return
    }
    let start = 0
    let lines = 0
    while (start < message.length) {
      let end = message.indexOf(NEWLINE, start)
      if (end < 0) end = message.length
      let space = start
      while (space < end && message[space] !== SPACE) space++
      if (space > start && space < end) {
        lines++
        this.#deliverLine(message, start, space, end)
      }
      start = end + 1
    }
    if (lines > 0) this.onFreed?.(lines)
  }

  /** The line's job, if it waits: its value alone when it takes one and the line allows, else its envelope. */
  #deliverLine(message: Buffer, start: number, space: number, end: number): void {
    const slot = this.#waiting.slotOfBytes(message, start, space)
    if (slot < 0) return
    const handler = this.#waiting.valueAt(slot)
    if (this.#copiesSent.size === 0 || !this.#copiesSent.has(this.#waiting.idAt(slot))) {
      this.#waiting.deleteAt(slot)
    }
    if (handler.onValue !== undefined) {
      const value = successValueAt(message, space + 1, end)
      if (value !== NOT_PLAIN_SUCCESS) {
        handler.onValue(value)
        return
      }
    }
    handler.onEnvelope(decodeEnvelope(message.toString('utf8', space + 1, end)))
  }

  #deliver(jobId: string, text: string): void {
    const handler = this.#waiting.get(jobId)
    if (handler === undefined) return
    if (!this.#copiesSent.has(jobId)) this.#waiting.delete(jobId)
    handler.onEnvelope(decodeEnvelope(text))
  }

  async #resubscribeAndRecover(): Promise<void> {
    try {
      await subscribeTo(this.#sub, [this.#channel])
      // Pushes sent while the subscriber was away are lost: the streams read what they missed.
      this.#pushes?.handOverAll('the subscriber reconnected')
      await connectReady(this.#cmd, 5_000)
      const found = await this.recover()
      if (found > 0) this.#logger.info({ found }, 'recovered results after reconnect')
    } catch (err) {
      this.#logger.warn({ err }, 'result recovery after reconnect failed; will retry on next reconnect')
    }
  }
}
