import type { Logger } from 'pino'
import type { PoolKeys } from '../protocol/keys.js'
import { appendChunks, type ChunkItem, type ChunkStatus } from '../protocol/scripts/chunk.js'
import type { Connection } from '../redis/connection.js'

const MAX_BATCH = 256
const MAX_BACKOFF_MS = 2_000

interface Pending {
  item: ChunkItem
  done: (status: ChunkStatus) => void
}

/**
 * Appends the chunks streamed jobs emit during one event-loop turn with a single script call. A
 * job has at most one chunk in flight (its driver waits for each chunk's status before taking the
 * next), so a retried call cannot reorder a job's chunks. A call that fails (Redis unreachable) is
 * retried with backoff until the writer is closed; then its chunks count as LOST.
 */
export class ChunkWriter {
  readonly #conn: Connection
  readonly #keys: PoolKeys
  readonly #resultTtlMs: number
  readonly #logger: Logger
  #queue: Pending[] = []
  #isScheduled = false
  #isClosed = false

  constructor(conn: Connection, keys: PoolKeys, resultTtlMs: number, logger: Logger) {
    this.#conn = conn
    this.#keys = keys
    this.#resultTtlMs = resultTtlMs
    this.#logger = logger
  }

  /** Queues a chunk for this turn's call; resolves with what became of it. */
  write(item: ChunkItem): Promise<ChunkStatus> {
    if (this.#isClosed) return Promise.resolve('LOST')
    return new Promise((done) => {
      this.#queue.push({ item, done })
      if (!this.#isScheduled) {
        this.#isScheduled = true
        setImmediate(() => this.#flush())
      }
    })
  }

  /** Stops retrying: chunks not stored by now resolve as LOST. */
  close(): void {
    this.#isClosed = true
  }

  #flush(): void {
    this.#isScheduled = false
    const all = this.#queue
    this.#queue = []
    for (let start = 0; start < all.length; start += MAX_BATCH)
      void this.#send(all.slice(start, start + MAX_BATCH))
  }

  async #send(batch: Pending[]): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        const statuses = await appendChunks(
          this.#conn,
          this.#keys,
          this.#resultTtlMs,
          batch.map((p) => p.item),
        )
        for (let i = 0; i < batch.length; i++) batch[i]?.done(statuses[i] as ChunkStatus)
        return
      } catch (err) {
        if (this.#isClosed) {
          for (const p of batch) p.done('LOST')
          return
        }
        if (attempt === 0 || attempt % 10 === 0) {
          this.#logger.warn({ err, chunks: batch.length, attempt }, 'appending chunks failed; retrying')
        }
        await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** attempt, MAX_BACKOFF_MS)))
      }
    }
  }
}
