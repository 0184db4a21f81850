/** Buckets of the sliding window: the window moves in steps of windowMs / BUCKETS. */
const BUCKETS = 12

/**
 * Client-side adaptive throttling, after Google's SRE book ("Handling Overload"): over a sliding
 * window, count the requests this producer made and the ones the pool accepted (served, or refused
 * for the request's own fault), and refuse a new request locally with probability
 * max(0, (requests - k * accepts) / (requests + 1)). While the pool serves, accepts keep up and
 * nothing is refused; during an upstream outage the producer sheds most of its load itself instead
 * of turning the outage into a retry storm, and lets a trickle through to see the recovery.
 * A request counts once its outcome is known (a refused one at once), so that a burst sent before
 * any answer came back is not taken for an outage; nothing is refused before the window holds
 * `minRequests` outcomes: a handful of failures is not an outage.
 */
export class AdaptiveThrottle {
  readonly #k: number
  readonly #bucketMs: number
  readonly #minRequests: number
  readonly #requests = new Array<number>(BUCKETS).fill(0)
  readonly #accepts = new Array<number>(BUCKETS).fill(0)
  #bucket = 0
  #bucketStart = 0

  constructor(k: number, windowMs: number, minRequests: number) {
    this.#k = k
    this.#bucketMs = Math.max(1, windowMs / BUCKETS)
    this.#minRequests = minRequests
  }

  /**
   * A new request: whether to refuse it here (a refused request counts as one not accepted).
   * `random` is drawn only when a request may be refused (it is in [0, 1)).
   */
  shouldShed(now: number, random?: number): boolean {
    const p = this.rejectProbability(now)
    if (p === 0) return false
    const shed = (random ?? Math.random()) < p
    if (shed) this.record(now, false)
    return shed
  }

  /** A request's outcome: accepted by the pool or not. */
  record(now: number, isAccepted: boolean): void {
    this.#advance(now)
    this.#requests[this.#bucket] = (this.#requests[this.#bucket] as number) + 1
    if (isAccepted) this.#accepts[this.#bucket] = (this.#accepts[this.#bucket] as number) + 1
  }

  /** The probability a request would be refused now. */
  rejectProbability(now: number): number {
    this.#advance(now)
    const requests = sum(this.#requests)
    if (requests < this.#minRequests) return 0
    return Math.max(0, (requests - this.#k * sum(this.#accepts)) / (requests + 1))
  }

  #advance(now: number): void {
    if (this.#bucketStart === 0) this.#bucketStart = now
    let steps = Math.floor((now - this.#bucketStart) / this.#bucketMs)
    if (steps <= 0) return
    this.#bucketStart += steps * this.#bucketMs
    if (steps > BUCKETS) steps = BUCKETS
    for (let i = 0; i < steps; i++) {
      this.#bucket = (this.#bucket + 1) % BUCKETS
      this.#requests[this.#bucket] = 0
      this.#accepts[this.#bucket] = 0
    }
  }
}

function sum(a: number[]): number {
  let s = 0
  for (const v of a) s += v
  return s
}
