/** A deadline in a {@link Deadlines} queue; `cancel` it when its stream ends first. */
export interface Deadline {
  readonly at: number
  isCancelled: boolean
  readonly fire: () => void
}

/**
 * Every open stream's deadline in one min-heap with one timer, armed for the earliest: a producer
 * with a thousand open streams holds one timer, not a thousand. A cancelled deadline stays in the
 * heap until it comes up (or the heap is compacted once most of it is cancelled).
 */
export class Deadlines {
  readonly #heap: Deadline[] = []
  #timer: NodeJS.Timeout | undefined
  #armedAt = Number.POSITIVE_INFINITY
  #cancelled = 0

  /** Calls `fire` at `at` (ms since the epoch, this host's clock) unless cancelled first. */
  add(at: number, fire: () => void): Deadline {
    const d: Deadline = { at, isCancelled: false, fire }
    this.#push(d)
    if (at < this.#armedAt) this.#arm()
    return d
  }

  cancel(d: Deadline): void {
    if (d.isCancelled) return
    d.isCancelled = true
    this.#cancelled++
    if (this.#cancelled > 64 && this.#cancelled * 2 > this.#heap.length) this.#compact()
  }

  /** Deadlines still to come. */
  get size(): number {
    return this.#heap.length - this.#cancelled
  }

  #arm(): void {
    clearTimeout(this.#timer)
    const first = this.#heap[0]
    if (first === undefined) {
      this.#timer = undefined
      this.#armedAt = Number.POSITIVE_INFINITY
      return
    }
    this.#armedAt = first.at
    this.#timer = setTimeout(() => this.#run(), Math.max(0, first.at - Date.now()))
    this.#timer.unref()
  }

  #run(): void {
    const now = Date.now()
    for (;;) {
      const first = this.#heap[0]
      if (first === undefined || first.at > now) break
      this.#pop()
      if (first.isCancelled) this.#cancelled--
      else {
        first.isCancelled = true
        first.fire()
      }
    }
    this.#arm()
  }

  #compact(): void {
    const live = this.#heap.filter((d) => !d.isCancelled)
    this.#heap.length = 0
    this.#cancelled = 0
    for (const d of live) this.#push(d)
    this.#arm()
  }

  #push(d: Deadline): void {
    const h = this.#heap
    h.push(d)
    let i = h.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if ((h[parent] as Deadline).at <= d.at) break
      h[i] = h[parent] as Deadline
      i = parent
    }
    h[i] = d
  }

  #pop(): void {
    const h = this.#heap
    const last = h.pop() as Deadline
    if (h.length === 0) return
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const c = r < h.length && (h[r] as Deadline).at < (h[l] as Deadline).at ? r : l
      if ((h[c] as Deadline).at >= last.at) break
      h[i] = h[c] as Deadline
      i = c
    }
    h[i] = last
  }
}
