/**
 * A deadline in a {@link Deadlines} queue. A submit is its own deadline (it carries these fields),
 * so queueing it allocates nothing; `add` makes one for a callback.
 */
export interface Deadline {
  /** When it is due: ms since the epoch, this host's clock. */
  at: number
  /** Its slot in the heap, -1 while it is not queued (not yet, fired or cancelled). */
  heapIndex: number
  fire(): void
}

/** Options of a {@link Deadlines} queue. */
export interface DeadlinesOptions {
  /**
   * Whether a queued deadline keeps the process alive, as a pending `setTimeout` does: a submit's
   * does (its caller awaits it), a stream's does not. @defaultValue false
   */
  isHoldingProcess?: boolean
}

/**
 * Deadlines in one min-heap with one timer, armed for the earliest: a producer with a thousand
 * jobs in flight holds one timer, not a thousand, and a deadline that is cancelled leaves the heap
 * at once (its slot is in the deadline). The timer is not re-armed when the earliest deadline is
 * cancelled, which is what nearly every deadline is: it fires at the old time, finds nothing due
 * and is armed again for the earliest then, so that a burst of jobs that finish in time costs no
 * timer at all.
 */
export class Deadlines {
  readonly #heap: Deadline[] = []
  readonly #isHoldingProcess: boolean
  #timer: NodeJS.Timeout | undefined
  #armedAt = Number.POSITIVE_INFINITY
  readonly #runBound = () => this.#run()

  constructor(options: DeadlinesOptions = {}) {
    this.#isHoldingProcess = options.isHoldingProcess === true
  }

  /** Calls `fire` at `at` (ms since the epoch, this host's clock) unless cancelled first. */
  add(at: number, fire: () => void): Deadline {
    const d: Deadline = { at, heapIndex: -1, fire }
    this.insert(d)
    return d
  }

  /** Queues a deadline the caller made: its `fire` is called at its `at` unless cancelled first. */
  insert(d: Deadline): void {
    this.#push(d)
    if (d.at < this.#armedAt) this.#arm()
    else if (this.#isHoldingProcess && this.#heap.length === 1) this.#timer?.ref()
  }

  /** Takes a deadline out of the queue; one that fired or is not queued is left alone. */
  cancel(d: Deadline): void {
    const i = d.heapIndex
    if (i < 0 || this.#heap[i] !== d) return
    this.#removeAt(i)
    // The timer stays armed (see the class comment), but an empty queue holds nothing up.
    if (this.#heap.length === 0) this.#timer?.unref()
  }

  /** Deadlines still to come. */
  get size(): number {
    return this.#heap.length
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
    this.#timer = setTimeout(this.#runBound, Math.max(0, first.at - Date.now()))
    if (!this.#isHoldingProcess) this.#timer.unref()
  }

  #run(): void {
    const now = Date.now()
    try {
      for (;;) {
        const first = this.#heap[0]
        if (first === undefined || first.at > now) break
        this.#removeAt(0)
        first.fire()
      }
    } finally {
      this.#arm()
    }
  }

  #removeAt(i: number): void {
    const h = this.#heap
    const removed = h[i] as Deadline
    removed.heapIndex = -1
    const last = h.pop() as Deadline
    if (last === removed) return
    h[i] = last
    last.heapIndex = i
    if (i > 0 && (h[(i - 1) >> 1] as Deadline).at > last.at) this.#siftUp(i)
    else this.#siftDown(i)
  }

  #push(d: Deadline): void {
    this.#heap.push(d)
    this.#siftUp(this.#heap.length - 1)
  }

  #siftUp(from: number): void {
    const h = this.#heap
    const d = h[from] as Deadline
    let i = from
    while (i > 0) {
      const parent = (i - 1) >> 1
      const p = h[parent] as Deadline
      if (p.at <= d.at) break
      h[i] = p
      p.heapIndex = i
      i = parent
    }
    h[i] = d
    d.heapIndex = i
  }

  #siftDown(from: number): void {
    const h = this.#heap
    const d = h[from] as Deadline
    let i = from
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const c = r < h.length && (h[r] as Deadline).at < (h[l] as Deadline).at ? r : l
      const child = h[c] as Deadline
      if (child.at >= d.at) break
      h[i] = child
      child.heapIndex = i
      i = c
    }
    h[i] = d
    d.heapIndex = i
  }
}
