/** What became of a model request, as the simulator decided on arrival. */
export type Outcome = 'accepted' | 'rateLimited' | 'failed' | 'rejected'

/** Model requests by outcome: `accepted` got 200, `rateLimited` 429 (quota), `failed` an injected error, `rejected` 4xx for a bad request or key. */
export interface OutcomeCounts {
  requests: number
  accepted: number
  rateLimited: number
  failed: number
  rejected: number
}

/** One second of traffic, by arrival time (`second` is Unix time in whole seconds). */
export interface SecondCounts extends OutcomeCounts {
  second: number
}

/** What `GET /_sim/stats` answers. */
export interface FakeGeminiStats {
  /** Since the start or the last reset. */
  totals: OutcomeCounts
  /** Requests being answered now (waiting for their first token, or streaming). */
  inflight: number
  /** The last {@link KEPT_SECONDS} seconds that had requests, oldest first. */
  perSecond: SecondCounts[]
}

/** How many seconds of per-second counts the simulator keeps. */
export const KEPT_SECONDS = 300

function zero(): OutcomeCounts {
  return { requests: 0, accepted: 0, rateLimited: 0, failed: 0, rejected: 0 }
}

/** Counts model requests per outcome, in total and per second of arrival. */
export class RequestStats {
  #totals = zero()
  readonly #seconds = new Map<number, SecondCounts>()
  inflight = 0

  /** Counts one request that arrived at `arrivedMs` (ms since the epoch). */
  count(outcome: Outcome, arrivedMs: number): void {
    const second = Math.floor(arrivedMs / 1000)
    let bucket = this.#seconds.get(second)
    if (!bucket) {
      bucket = { second, ...zero() }
      this.#seconds.set(second, bucket)
      for (const old of this.#seconds.keys()) {
        if (old > second - KEPT_SECONDS) break
        this.#seconds.delete(old)
      }
    }
    for (const counts of [this.#totals, bucket]) {
      counts.requests++
      counts[outcome]++
    }
  }

  snapshot(): FakeGeminiStats {
    return {
      totals: { ...this.#totals },
      inflight: this.inflight,
      perSecond: [...this.#seconds.values()].sort((a, b) => a.second - b.second).map((s) => ({ ...s })),
    }
  }

  /** Forgets the counts (not the requests in flight). */
  reset(): void {
    this.#totals = zero()
    this.#seconds.clear()
  }
}
