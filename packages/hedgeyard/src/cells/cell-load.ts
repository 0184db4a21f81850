import type { PoolKeys } from '../protocol/keys.js'
import type { Connection } from '../redis/connection.js'

/**
 * What a producer knows of one cell's load: read from Redis at most every `cacheMs`, plus the
 * producer's own jobs in the cell that have not settled.
 */
interface CellSummary {
  /**
   * The lowest score in the cell's `ready` ZSET: the utilisation of its least loaded worker with
   * room, in millionths (placement/ready.lua); below 1,000,000 a worker has a free slot. Infinity
   * when no worker has room (every one full, or none at all).
   */
  best: number
  /** ZCARD of `ready`: how many workers have room. */
  room: number
  readAt: number
  reading: Promise<void> | undefined
  /** This producer's jobs in the cell, sent and not settled. */
  inflight: number
}

/**
 * Chooses the cell of a request without a session: the less loaded of two cells drawn at random
 * (power of two choices). A cell's load is what dispatch keeps anyway, read in O(1) (O(log n) for
 * the lowest score): the best score in its `ready` ZSET, then how many workers have room, then this
 * producer's own jobs in it. Each summary is cached for `cacheMs`; a stale one is read again, and
 * concurrent picks share the read.
 */
export class CellLoad {
  readonly #conn: Connection
  readonly #keys: readonly PoolKeys[]
  readonly #cacheMs: number
  readonly #random: () => number
  readonly #cells: CellSummary[]
  readonly #connected: () => Promise<void>

  /** `connected` resolves once `conn` is ready (it has no offline queue). */
  constructor(
    conn: Connection,
    keys: readonly PoolKeys[],
    cacheMs: number,
    connected: () => Promise<void>,
    random = Math.random,
  ) {
    this.#conn = conn
    this.#connected = connected
    this.#keys = keys
    this.#cacheMs = cacheMs
    this.#random = random
    this.#cells = keys.map(() => ({ best: 0, room: 0, readAt: -Infinity, reading: undefined, inflight: 0 }))
  }

  /** Picks a cell with the summaries as they are (a stream's start cannot wait); reads stale ones for next time. */
  pickNow(): number {
    const [a, b] = this.#draw()
    this.#refresh(a, b)
    return this.#better(a, b)
  }

  /**
   * Picks a cell after reading the summaries of the two drawn cells if they are stale. While the
   * connection is lost (after it was first made) the pick does not wait for it: the summaries as
   * they are will do, and the submit itself waits for Redis as its options say.
   */
  async pick(): Promise<number> {
    const [a, b] = this.#draw()
    const status = this.#conn.status
    if (status === 'ready' || status === 'wait') await this.#refresh(a, b)
    else void this.#refresh(a, b)
    return this.#better(a, b)
  }

  /** A job of this producer went to `cell`. */
  sent(cell: number): void {
    ;(this.#cells[cell] as CellSummary).inflight++
  }

  /** A job of this producer in `cell` settled. */
  settled(cell: number): void {
    ;(this.#cells[cell] as CellSummary).inflight--
  }

  /** The producer's view of each cell: for tests and tools. */
  snapshot(): { best: number; room: number; inflight: number }[] {
    return this.#cells.map(({ best, room, inflight }) => ({ best, room, inflight }))
  }

  #draw(): [number, number] {
    const n = this.#cells.length
    const a = Math.floor(this.#random() * n)
    if (n === 1) return [a, a]
    // A second cell other than the first: draw from the n - 1 others.
    const b = (a + 1 + Math.floor(this.#random() * (n - 1))) % n
    return [a, b]
  }

  #better(a: number, b: number): number {
    const x = this.#cells[a] as CellSummary
    const y = this.#cells[b] as CellSummary
    // Neither drawn cell has room: any cell known to have some is better than a refusal.
    if (x.best === Infinity && y.best === Infinity) return this.#anyWithRoom() ?? a
    if (x.best !== y.best) return x.best < y.best ? a : b
    if (x.room !== y.room) return x.room > y.room ? a : b
    return y.inflight < x.inflight ? b : a
  }

  /** The cell with the lowest known best score, if any has room: O(cells), only when both drawn are full. */
  #anyWithRoom(): number | undefined {
    let found: number | undefined
    this.#cells.forEach((c, i) => {
      if (c.best !== Infinity && (found === undefined || c.best < (this.#cells[found] as CellSummary).best))
        found = i
    })
    return found
  }

  #refresh(a: number, b: number): Promise<void> {
    const now = Date.now()
    const reads = [this.#read(a, now)]
    if (b !== a) reads.push(this.#read(b, now))
    return Promise.all(reads).then(() => {})
  }

  #read(cell: number, now: number): Promise<void> {
    const c = this.#cells[cell] as CellSummary
    if (now - c.readAt < this.#cacheMs) return Promise.resolve()
    if (c.reading !== undefined) return c.reading
    const ready = (this.#keys[cell] as PoolKeys).ready
    c.reading = this.#connected()
      .then(() => Promise.all([this.#conn.zrange(ready, '0', '0', 'WITHSCORES'), this.#conn.zcard(ready)]))
      .then(
        ([lowest, room]) => {
          c.best = lowest.length === 2 ? Number(lowest[1]) : Infinity
          c.room = room
        },
        // A failed read keeps the last summary: the submit itself will meet the failure.
        () => {},
      )
      .finally(() => {
        c.readAt = Date.now()
        c.reading = undefined
      })
    return c.reading
  }
}
