import type { Logger } from 'pino'
import type { Registration } from './registration.js'

/** The workers a heartbeat keeps alive, and what it tells them of what it found. */
export interface HeartbeatRoster {
  /** Workers whose lease is renewed: every one not stopped yet, draining ones included. */
  leased(): string[]
  /** Whether a worker still takes jobs: only those are registered again when Redis lost them. */
  isServing(workerId: string): boolean
  /** Someone asked these workers to drain (`hedgeyard drain`, `drainWorkers`). */
  drainAsked(workerIds: string[]): void
}

/** The heartbeat's period for a lease: three beats per lease, so one lost beat costs no worker. */
export function beatIntervalMs(leaseMs: number): number {
  return Math.max(50, Math.floor(leaseMs / 3))
}

/**
 * Renews the leases of this process's workers every leaseMs / 3 (measuring the clock offset on
 * the way), and acts on what the heartbeat script found: workers Redis lost, or whose keys another
 * client replaced, register again; workers asked to drain are told to.
 */
export class Heartbeat {
  readonly #registration: Registration
  readonly #roster: HeartbeatRoster
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #beat: Promise<void> | undefined
  #isStopped = false

  constructor(registration: Registration, roster: HeartbeatRoster, logger: Logger) {
    this.#registration = registration
    this.#roster = roster
    this.#logger = logger
  }

  start(): void {
    if (this.#timer !== undefined || this.#isStopped) return
    this.#timer = setInterval(() => {
      // One beat at a time: a slow one is not stacked on.
      this.#beat ??= this.#run().finally(() => {
        this.#beat = undefined
      })
    }, beatIntervalMs(this.#registration.leaseMs))
  }

  /**
   * Stops beating. Resolves once a beat in flight has ended; it acts on nothing it finds after
   * this call (no worker registered again once its group stops).
   */
  stop(): Promise<void> {
    this.#isStopped = true
    clearInterval(this.#timer)
    return this.#beat ?? Promise.resolve()
  }

  async #run(): Promise<void> {
    const ids = this.#roster.leased()
    if (ids.length === 0) return
    try {
      const statuses = await this.#registration.renew(ids)
      if (this.#isStopped) return
      const gone = ids.filter((_, i) => statuses[i] === 'GONE')
      const broken = ids.filter((_, i) => statuses[i] === 'BROKEN')
      const draining = ids.filter((_, i) => statuses[i] === 'DRAINING')
      if (gone.length > 0) {
        this.#logger.warn({ workerIds: gone }, 'workers were removed from the pool; registering them again')
      }
      if (broken.length > 0) {
        this.#logger.error(
          { workerIds: broken },
          'worker keys hold another type than Hedgeyard writes (changed by another client); registering again replaces them',
        )
      }
      // A draining worker is on its way out: registering it again would put it back in dispatch.
      const lost = [...gone, ...broken].filter((id) => this.#roster.isServing(id))
      if (lost.length > 0) await this.#registration.register(lost)
      if (draining.length > 0) this.#roster.drainAsked(draining)
    } catch (err) {
      if (!this.#isStopped) {
        this.#logger.warn({ err }, 'heartbeat failed; the lease runs out unless the next one succeeds')
      }
    }
  }
}
