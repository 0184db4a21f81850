/** How far below a whole token the bucket may be, from rounding alone, and still give one. */
const TOKEN_EPSILON = 1e-9

/**
 * A token bucket that keeps hedging from melting a loaded pool: every submit earns `ratio` of a
 * token, every extra copy (hedge or retry) spends one, and the bucket holds at most `burst`.
 * With the default ratio of 0.1, extra copies are at most about 10% of submits.
 */
export class HedgeBudget {
  readonly #ratio: number
  readonly #burst: number
  #tokens: number

  constructor(ratio: number, burst: number) {
    this.#ratio = ratio
    this.#burst = burst
    this.#tokens = burst
  }

  /** Called once per submit. */
  earn(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + this.#ratio)
  }

  /** Gives back the token of an extra copy that was not sent after all. */
  refund(): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + 1)
  }

  /** Spends a token for an extra copy; false when the budget is spent. */
  take(): boolean {
    // Ten earnings of 0.1 add up to 0.9999999999999999 in floating point: a token that is whole
    // but for rounding counts as whole.
    if (this.#tokens < 1 - TOKEN_EPSILON) return false
    this.#tokens -= 1
    return true
  }
}

/**
 * This producer's recent latencies for its pool, for the `'auto'` hedge delay: a high percentile
 * of the last `size` successful submits, recomputed at most every `recomputeEvery` samples.
 */
export class LatencyTracker {
  readonly #samples: Float64Array
  #count = 0
  #next = 0
  #sinceRecompute = 0
  #cached: number | undefined
  readonly #percentile: number
  readonly #recomputeEvery: number

  constructor(percentile: number, size = 1_000, recomputeEvery = 50) {
    this.#samples = new Float64Array(size)
    this.#percentile = percentile
    this.#recomputeEvery = recomputeEvery
  }

  record(ms: number): void {
    this.#samples[this.#next] = ms
    this.#next = (this.#next + 1) % this.#samples.length
    this.#count = Math.min(this.#count + 1, this.#samples.length)
    if (++this.#sinceRecompute >= this.#recomputeEvery) this.#cached = undefined
  }

  /** Samples held. */
  get count(): number {
    return this.#count
  }

  /** The 50th and 99th percentiles of the samples held (one sort), or undefined when there are none. */
  quantiles(): { p50: number; p99: number } | undefined {
    if (this.#count === 0) return undefined
    const sorted = this.#samples.slice(0, this.#count).sort()
    const at = (q: number) => sorted[Math.min(this.#count - 1, Math.ceil(q * this.#count) - 1)] ?? 0
    return { p50: at(0.5), p99: at(0.99) }
  }

  /** The percentile of the samples held, or undefined when there are none. */
  value(): number | undefined {
    if (this.#count === 0) return undefined
    if (this.#cached === undefined) {
      const sorted = this.#samples.slice(0, this.#count).sort()
      this.#cached = sorted[Math.min(this.#count - 1, Math.ceil(this.#percentile * this.#count) - 1)] ?? 0
      this.#sinceRecompute = 0
    }
    return this.#cached
  }
}
