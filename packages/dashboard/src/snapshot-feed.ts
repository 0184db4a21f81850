import type { FastifyBaseLogger } from 'fastify'
import { isHedgeyardError, openPoolView, type PoolRef, type PoolSnapshot, type PoolView } from 'hedgeyard'
import { type PoolRates, RateWindow } from './rates.js'

/** What each `snapshot` event carries: the pool view's snapshot and the rates derived from it. */
export interface DashboardSnapshot extends PoolSnapshot, PoolRates {
  /** How often the pool is read, in ms. */
  intervalMs: number
}

/** One message to every page that watches: a snapshot, or why the pool could not be read. */
export type FeedMessage =
  | { event: 'snapshot'; id: number; data: DashboardSnapshot }
  | { event: 'failure'; id: number; data: { code: string; message: string } }

export type FeedListener = (message: FeedMessage) => void

/**
 * Reads a pool once per interval for every page that watches it: one poll and one Redis
 * connection per process however many pages are open, none while no page is. The pages get the
 * same messages, numbered in order.
 */
export class SnapshotFeed {
  readonly #ref: PoolRef
  readonly #intervalMs: number
  readonly #logger: FastifyBaseLogger
  readonly #listeners = new Set<FeedListener>()
  #loop: Promise<void> | undefined
  #view: PoolView | undefined
  #last: FeedMessage | undefined
  #seq = 0
  #wake: (() => void) | undefined
  #isClosed = false
  #isFailing = false

  constructor(ref: PoolRef, intervalMs: number, logger: FastifyBaseLogger) {
    this.#ref = ref
    this.#intervalMs = intervalMs
    this.#logger = logger
  }

  /** Whether a poll is running (some page watches, or the last one just left). */
  get isPolling(): boolean {
    return this.#loop !== undefined
  }

  /** Sends `listener` every message from now on (the latest one at once); returns its unsubscribe. */
  subscribe(listener: FeedListener): () => void {
    if (this.#isClosed) return () => {}
    this.#listeners.add(listener)
    if (this.#last !== undefined) listener(this.#last)
    this.#start()
    return () => {
      this.#listeners.delete(listener)
      if (this.#listeners.size === 0) this.#wake?.()
    }
  }

  /** Stops polling and closes the connection. */
  async close(): Promise<void> {
    this.#isClosed = true
    this.#listeners.clear()
    this.#wake?.()
    await this.#loop
  }

  #start(): void {
    if (this.#loop !== undefined) return
    // A page that arrives while the loop is winding down finds #loop still set: the loop's end
    // starts a new one for it.
    this.#loop = this.#run().finally(() => {
      this.#loop = undefined
      if (this.#listeners.size > 0 && !this.#isClosed) this.#start()
    })
  }

  #isWatched(): boolean {
    return this.#listeners.size > 0 && !this.#isClosed
  }

  async #run(): Promise<void> {
    const rates = new RateWindow()
    try {
      while (this.#isWatched()) {
        const startedAt = Date.now()
        const message = await this.#read(rates)
        if (!this.#isWatched()) break
        this.#last = message
        for (const listener of [...this.#listeners]) listener(message)
        await this.#sleep(this.#intervalMs - (Date.now() - startedAt))
      }
    } finally {
      this.#last = undefined
      this.#view?.close()
      this.#view = undefined
    }
  }

  async #read(rates: RateWindow): Promise<FeedMessage> {
    try {
      this.#view ??= await openPoolView(this.#ref, 'dashboard')
      const snapshot = await this.#view.snapshot()
      if (this.#isFailing) this.#logger.info({ pool: this.#ref.pool }, 'dashboard reads the pool again')
      this.#isFailing = false
      return {
        event: 'snapshot',
        id: ++this.#seq,
        data: { ...snapshot, ...rates.push(snapshot.at, snapshot.workers), intervalMs: this.#intervalMs },
      }
    } catch (err) {
      const code = isHedgeyardError(err) ? err.code : 'ERROR'
      const message = err instanceof Error ? err.message : String(err)
      // Once per outage, not once per second.
      if (!this.#isFailing) this.#logger.warn({ err, pool: this.#ref.pool }, 'dashboard cannot read the pool')
      this.#isFailing = true
      return { event: 'failure', id: ++this.#seq, data: { code, message } }
    }
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms))
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.#wake = () => {
        this.#wake = undefined
        done()
      }
    })
  }
}
