/** The counters of one worker that rates are derived from. */
export interface WorkerCounters {
  workerId: string
  /** Jobs whose handler finished, successfully or not. */
  processed: number
  /** Jobs whose handler failed. */
  errors: number
}

/** Rates over the last few snapshots. */
export interface PoolRates {
  /** Jobs finished per second, successfully or not; null until two snapshots were compared. */
  jobsPerS: number | null
  /** Failed jobs as a fraction of finished ones; null when none finished. */
  errorRate: number | null
}

interface Sample {
  dtMs: number
  processed: number
  errors: number
}

/**
 * Jobs/s and error rate from successive snapshots of the workers' counters, over a sliding window.
 * Counters are compared worker by worker: a worker that left takes its count with it (the pool's
 * sum drops, which is not a negative rate), and one whose counter went down restarted under the
 * same id, so all of its count is new.
 */
export class RateWindow {
  readonly #windowMs: number
  #prevAt: number | undefined
  #prev = new Map<string, WorkerCounters>()
  #samples: Sample[] = []

  /** @param windowMs how much history the rates average over. */
  constructor(windowMs = 5_000) {
    this.#windowMs = windowMs
  }

  /** Adds a snapshot taken at `at` (Redis ms) and returns the rates over the window. */
  push(at: number, workers: readonly WorkerCounters[]): PoolRates {
    const prevAt = this.#prevAt
    if (prevAt === undefined || at > prevAt) {
      if (prevAt !== undefined) this.#samples.push({ dtMs: at - prevAt, ...this.#delta(workers) })
      this.#prevAt = at
      this.#prev = new Map(workers.map((w) => [w.workerId, w]))
    }
    let spanMs = this.#samples.reduce((sum, s) => sum + s.dtMs, 0)
    while (this.#samples.length > 1 && spanMs - (this.#samples[0]?.dtMs ?? 0) >= this.#windowMs) {
      spanMs -= this.#samples.shift()?.dtMs ?? 0
    }
    const processed = this.#samples.reduce((sum, s) => sum + s.processed, 0)
    const errors = this.#samples.reduce((sum, s) => sum + s.errors, 0)
    return {
      jobsPerS: spanMs > 0 ? (processed * 1_000) / spanMs : null,
      errorRate: processed > 0 ? Math.min(1, errors / processed) : null,
    }
  }

  #delta(workers: readonly WorkerCounters[]): { processed: number; errors: number } {
    let processed = 0
    let errors = 0
    for (const w of workers) {
      const before = this.#prev.get(w.workerId)
      const isSameRun = before !== undefined && w.processed >= before.processed && w.errors >= before.errors
      processed += counter(w.processed) - (isSameRun ? counter(before.processed) : 0)
      errors += counter(w.errors) - (isSameRun ? counter(before.errors) : 0)
    }
    return { processed, errors }
  }
}

/** A counter read from Redis: anything but a non-negative finite number counts as 0. */
function counter(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0
}
