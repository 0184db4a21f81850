const WINDOW_MS = 1000

/**
 * Requests per second per API key, as a sliding window: a request is accepted when fewer than
 * the quota were accepted for its key in the last second, so no 1-second span (a calendar second
 * included) ever holds more than the quota. Refused requests use no quota.
 */
export class KeyQuota {
  /** Accepted requests per key, oldest first, only those of the last second. */
  readonly #accepted = new Map<string, number[]>()

  /** Takes a slot for `key` at `nowMs`: 0 when accepted, else how many ms until a slot frees. */
  take(key: string, perSecond: number, nowMs: number): number {
    if (perSecond <= 0) return 0
    let times = this.#accepted.get(key)
    if (!times) {
      times = []
      this.#accepted.set(key, times)
    }
    while (times.length > 0 && (times[0] as number) <= nowMs - WINDOW_MS) times.shift()
    if (times.length < perSecond) {
      times.push(nowMs)
      return 0
    }
    // The quota may have been lowered since: the slot frees when the surplus has left the window.
    const freeing = times[times.length - perSecond] as number
    return Math.max(1, freeing + WINDOW_MS - nowMs)
  }

  /** Forgets every key. */
  clear(): void {
    this.#accepted.clear()
  }
}
