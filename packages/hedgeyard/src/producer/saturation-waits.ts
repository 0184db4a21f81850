import { probeDelayMs, type TenantWaiter } from './tenant-waits.js'

/**
 * The requests the pool refused for want of room (SATURATED, or NO_WORKERS) whose callers asked
 * to wait (onSaturated 'wait'), parked in one FIFO per producer instead of each polling the
 * dispatch script on a backoff of its own. A request goes again:
 * - at once when one of this producer's jobs ends (a result line heard: its worker has a slot
 *   free), one parked request per result, so a producer that fills the pool keeps it full at the
 *   cost of about one dispatch per job placed;
 * - otherwise as a probe, one at a time, after a backoff (5 ms doubling up to 250 ms, as for a
 *   tenant's parked requests), for room freed by other producers or by workers that start; a
 *   probe that is placed sends two more at once, each placed one two more again, so a pool that
 *   found room takes the backlog in a few round trips.
 * A request refused again goes back to the front, ahead of those parked after it: requests are
 * sent in the order they came.
 */
export class SaturationWaits {
  /** Parked requests (woken ones leave it): the membership of the two queues below. */
  readonly #parked = new Set<TenantWaiter>()
  /** Woken requests refused again, in the order they came back: sent before `#back`. */
  #front: TenantWaiter[] = []
  #back: TenantWaiter[] = []
  #frontHead = 0
  #backHead = 0
  /** Sent again and not yet answered; those sent as probes are in `#probes` too. */
  readonly #woken = new Set<TenantWaiter>()
  readonly #probes = new Set<TenantWaiter>()
  #timer: NodeJS.Timeout | undefined
  /** Probes refused in a row: the next one waits longer. */
  #round = 0

  /** Requests parked or sent again and not yet answered. */
  get size(): number {
    return this.#parked.size + this.#woken.size
  }

  /** Parks `waiter`, refused: at the front when it had been sent again, else behind the others. */
  park(waiter: TenantWaiter): void {
    const wasWoken = this.#woken.delete(waiter)
    if (this.#probes.delete(waiter)) this.#round++
    if (this.#parked.has(waiter)) return
    this.#parked.add(waiter)
    if (wasWoken) this.#front.push(waiter)
    else this.#back.push(waiter)
    this.#schedule()
  }

  /** The request sent again got another answer than a refusal for room: placed, or refused otherwise. */
  answered(waiter: TenantWaiter, isPlaced: boolean): void {
    if (!this.#woken.delete(waiter)) return
    if (this.#probes.delete(waiter) && isPlaced) {
      this.#round = 0
      this.#wake(2, true)
    }
    this.#schedule()
  }

  /** Takes a request out (it ended: its deadline, an abort, a result), parked or sent again. */
  leave(waiter: TenantWaiter): void {
    this.#parked.delete(waiter)
    this.#woken.delete(waiter)
    this.#probes.delete(waiter)
    if (this.#parked.size === 0) this.#clear()
    else this.#schedule()
  }

  /** `count` of this producer's jobs ended: as many parked requests go again at once. */
  freed(count: number): void {
    if (this.#parked.size === 0) return
    this.#wake(count, false)
  }

  #wake(count: number, asProbes: boolean): void {
    for (let i = 0; i < count; i++) {
      const waiter = this.#next()
      if (waiter === undefined) break
      this.#woken.add(waiter)
      if (asProbes) this.#probes.add(waiter)
      waiter.wake()
    }
    if (this.#parked.size === 0) this.#clear()
  }

  /** The next parked request, front first; undefined when none is parked. */
  #next(): TenantWaiter | undefined {
    while (this.#frontHead < this.#front.length) {
      const w = this.#front[this.#frontHead++] as TenantWaiter
      if (this.#parked.delete(w)) return w
    }
    if (this.#frontHead > 0) {
      this.#front = []
      this.#frontHead = 0
    }
    while (this.#backHead < this.#back.length) {
      const w = this.#back[this.#backHead++] as TenantWaiter
      if (this.#parked.delete(w)) {
        // The spent head is dropped now and then, for a producer that is never without a backlog.
        if (this.#backHead >= 1024 && this.#backHead * 2 >= this.#back.length) {
          this.#back = this.#back.slice(this.#backHead)
          this.#backHead = 0
        }
        return w
      }
    }
    return undefined
  }

  /** A probe goes after the backoff while requests are parked and no probe is out. */
  #schedule(): void {
    if (this.#timer !== undefined || this.#probes.size > 0 || this.#parked.size === 0) return
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      if (this.#probes.size === 0) this.#wake(1, true)
    }, probeDelayMs(this.#round))
  }

  /**
   * Nothing parked: the queues are emptied (their spent heads too), the timer stopped, and the
   * next wait's first probe goes after the shortest backoff.
   */
  #clear(): void {
    if (this.#probes.size === 0) this.#round = 0
    this.#front = []
    this.#back = []
    this.#frontHead = 0
    this.#backHead = 0
    clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
