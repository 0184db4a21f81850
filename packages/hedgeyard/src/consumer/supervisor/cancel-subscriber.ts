import { cancelChannel, type PoolKeys } from '../../protocol/keys.js'
import {
  type Connection,
  connectReady,
  createConnection,
  onMessage,
  type RedisInput,
  subscribeTo,
} from '../../redis/connection.js'

/** Told to stop a copy: the worker holding it, its entry, and why. */
export type CancelHandler = (workerId: string, entryId: string, reason: string) => void

/** What a winner's message means: it sends the entry id alone. */
export const WON_ELSEWHERE = 'another copy of this job won'

/**
 * Parses a message of a worker's cancel channel: the entry id, then, from a cancel, a space and
 * why (a winner's sends the id alone).
 */
export function parseCancel(message: string): { entryId: string; reason: string } {
  const space = message.indexOf(' ')
  return space < 0
    ? { entryId: message, reason: WON_ELSEWHERE }
    : { entryId: message.slice(0, space), reason: message.slice(space + 1) }
}

/**
 * Listens on the cancel channels of this process's workers, on a connection of its own: a copy
 * another copy has beaten, or a job cancelled (`cancelJob`), is stopped where it runs.
 */
export class CancelSubscriber {
  readonly #redis: RedisInput
  readonly #keys: PoolKeys
  readonly #name: string
  readonly #onCancel: CancelHandler
  #conn: Connection | undefined

  /** `name` is the connection's, as `CLIENT LIST` shows it. */
  constructor(redis: RedisInput, keys: PoolKeys, name: string, onCancel: CancelHandler) {
    this.#redis = redis
    this.#keys = keys
    this.#name = name
    this.#onCancel = onCancel
  }

  /**
   * Connects and subscribes to the channels of `workerIds`. On failure nothing is left open.
   * @throws HedgeyardError REDIS_UNAVAILABLE when Redis cannot be reached in time; the error of
   * SUBSCRIBE (a user not allowed the channels, say) as it came.
   */
  async start(workerIds: readonly string[]): Promise<void> {
    const conn = createConnection(this.#redis, 'subscriber', this.#name, this.#keys.base)
    this.#conn = conn
    // Worker ids may contain ':', so a channel is mapped back to its worker, not parsed.
    const byChannel = new Map(workerIds.map((id) => [cancelChannel(this.#keys, id), id]))
    onMessage(conn, (channel, message) => {
      const workerId = byChannel.get(channel.toString())
      if (workerId === undefined) return
      const { entryId, reason } = parseCancel(message.toString())
      this.#onCancel(workerId, entryId, reason)
    })
    try {
      await connectReady(conn, 5_000)
      await subscribeTo(conn, [...byChannel.keys()])
    } catch (err) {
      conn.disconnect()
      throw err
    }
  }

  /** Unsubscribes by closing its connection. */
  stop(): void {
    this.#conn?.disconnect()
  }
}
