import type { Logger } from 'pino'
import { decodeEntry, type JobEntry } from '../protocol/codec.js'
import { CONSUMER_GROUP, type PoolKeys, queueKey } from '../protocol/keys.js'
import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  unblockClient,
} from '../redis/connection.js'

/** An XREADGROUP reply: a deleted entry still pending comes back with no fields. */
export type StreamReply = [string, [string, string[] | null][]][] | null

/** An entry read that cannot run, and why (for the dead letters). */
export interface RejectedEntry {
  entryId: string
  reason: string
}

/** What one read brought: the entries to run, and those that cannot run (left out when none). */
export interface ReadEntries {
  entries: JobEntry[]
  rejected?: RejectedEntry[]
}

/** Extra time a blocking read may take past its BLOCK before the watchdog replaces the connection. */
export const WATCHDOG_MARGIN_MS = 3_000

/** Why an entry's payload is too large to run, or undefined (the producer's limit, enforced here too). */
export function payloadTooLarge(entry: JobEntry, maxPayloadBytes: number): string | undefined {
  // Three bytes at most per UTF-16 unit: a short payload is not measured.
  if (entry.payload.length <= maxPayloadBytes / 3) return undefined
  const bytes = Buffer.byteLength(entry.payload)
  return bytes > maxPayloadBytes
    ? `payload of ${bytes} bytes is over the worker's maxPayloadBytes (${maxPayloadBytes})`
    : undefined
}

/** Decodes a read: every entry is checked on its own, so one bad entry does not stop the others. */
export function decodeRead(reply: StreamReply, maxPayloadBytes: number): ReadEntries {
  const read: ReadEntries = { entries: [] }
  for (const [, items] of reply ?? []) {
    for (const [entryId, fields] of items) {
      // A deleted entry still in the pending list comes back with no fields: nothing to run.
      if (fields === null) continue
      const entry = decodeEntry(entryId, fields)
      const reason =
        'invalid' in entry ? `invalid entry: ${entry.invalid}` : payloadTooLarge(entry, maxPayloadBytes)
      if (reason === undefined) read.entries.push(entry as JobEntry)
      else if (read.rejected === undefined) read.rejected = [{ entryId, reason }]
      else read.rejected.push({ entryId, reason })
    }
  }
  return read
}

/** What a reader reads with. */
export interface ReaderSettings {
  redis: RedisInput
  keys: PoolKeys
  /** Entries read at most by one read of the pending ones is this times 64. */
  concurrency: number
  /** BLOCK of a read, in ms. */
  blockMs: number
  maxPayloadBytes: number
}

/**
 * A worker's reads of its own stream, on a blocking connection of its own: the entries it left
 * pending (before a restart, or a lost reply), and new ones. A read that outlives its BLOCK (the
 * connection hangs, as seen after reconnects) makes it replace the connection.
 */
export class EntryReader {
  readonly #workerId: string
  readonly #s: ReaderSettings
  readonly #queue: string
  readonly #logger: Logger
  #conn: Connection
  #clientId: number | undefined

  constructor(workerId: string, settings: ReaderSettings, logger: Logger) {
    this.#workerId = workerId
    this.#s = settings
    this.#queue = queueKey(settings.keys, workerId)
    this.#logger = logger
    this.#conn = this.#connect()
  }

  /** Resolves once the connection is ready (connecting it if needed). */
  ready(): Promise<void> {
    return connectReady(this.#conn, 5_000)
  }

  /** Ends a blocked read at once, as if its BLOCK had run out (CLIENT UNBLOCK, sent on `cmd`). */
  async unblock(cmd: Connection): Promise<void> {
    if (this.#clientId === undefined) return
    await unblockClient(cmd, this.#conn, this.#clientId).catch(() => false)
  }

  disconnect(): void {
    this.#conn.disconnect()
  }

  /** Reads the entries delivered to this worker and not completed. */
  async readPending(): Promise<ReadEntries> {
    const reply = (await this.#conn.call(
      'XREADGROUP',
      'GROUP',
      CONSUMER_GROUP,
      this.#workerId,
      'COUNT',
      this.#s.concurrency * 64,
      'STREAMS',
      this.#queue,
      '0',
    )) as StreamReply
    return decodeRead(reply, this.#s.maxPayloadBytes)
  }

  /** Reads up to `count` new entries, waiting up to blockMs for one when `isBlocking`. */
  async read(count: number, isBlocking: boolean): Promise<ReadEntries> {
    const args: (string | number)[] = ['GROUP', CONSUMER_GROUP, this.#workerId, 'COUNT', count]
    if (isBlocking) args.push('BLOCK', this.#s.blockMs)
    args.push('STREAMS', this.#queue, '>')
    const read = this.#conn.call('XREADGROUP', ...args) as Promise<StreamReply>
    let timer: NodeJS.Timeout | undefined
    const watchdog = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('watchdog')), this.#s.blockMs + WATCHDOG_MARGIN_MS)
    })
    try {
      return decodeRead(await Promise.race([read, watchdog]), this.#s.maxPayloadBytes)
    } catch (err) {
      if (err instanceof Error && err.message === 'watchdog') {
        // Whatever the hung connection had delivered is pending for this consumer and is read again.
        this.#logger.warn({ blockMs: this.#s.blockMs }, 'blocking read hung; replacing its connection')
        read.catch(() => {})
        this.#conn.disconnect()
        this.#conn = this.#connect()
      }
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  #connect(): Connection {
    const conn = createConnection(this.#s.redis, 'blocking', `hy:worker:${this.#workerId}`, this.#queue)
    conn.on('ready', () => {
      conn.client('ID').then(
        (id) => {
          this.#clientId = Number(id)
        },
        () => {},
      )
    })
    return conn
  }
}
