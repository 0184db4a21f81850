/**
 * Redis time as the workers of one process read it: the local clock corrected by an offset,
 * measured on every call whose reply carries Redis time (register, heartbeat). Job deadlines are
 * in Redis time, so a host whose clock is off still aborts each job when its caller gives up.
 */
export class RedisClock {
  #offsetMs = 0

  /** Redis time minus local time, in ms, as last measured. @defaultValue 0 */
  get offsetMs(): number {
    return this.#offsetMs
  }

  /**
   * Takes a reply carrying `redisMs` to a call sent at `sentAt` (local ms) and answered at `now`:
   * Redis read its clock about halfway through the round trip.
   */
  measure(sentAt: number, redisMs: number, now = Date.now()): void {
    this.#offsetMs = redisMs - Math.round((sentAt + now) / 2)
  }

  /** Redis time now, in ms. */
  now(): number {
    return Date.now() + this.#offsetMs
  }
}
