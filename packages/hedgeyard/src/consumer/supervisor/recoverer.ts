import type { Logger } from 'pino'
import { type MetricsSink, notify } from '../../observe/metrics-sink.js'
import type { PoolKeys } from '../../protocol/keys.js'
import { type RescueSettings, rescueJobs } from '../../protocol/scripts/rescue.js'
import type { Connection } from '../../redis/connection.js'

/** Entries one rescue call moves at most; a larger backlog is moved over several calls. */
export const RESCUE_BUDGET = 500

/** What a recoverer needs besides its connection. */
export interface RecovererSettings {
  /** How often it looks for dead workers, in ms (the heartbeat's period). */
  intervalMs: number
  deadLetterCap: number
  /** How long a DEAD_LETTERED answer is kept when the entry does not say (ms). */
  resultTtlMs: number
  pool: string
  /** Told how many jobs were moved and dead-lettered; none when undefined. */
  metrics: MetricsSink | undefined
}

/**
 * Every live group of workers runs one: it moves the jobs of workers whose lease ran out to live
 * workers (a job past its attempts to the dead letters), and removes those workers from the pool.
 * Several processes may run it at once: the rescue script moves each job exactly once.
 */
export class Recoverer {
  readonly #cmd: Connection
  readonly #keys: PoolKeys
  readonly #settings: RecovererSettings
  readonly #rescue: RescueSettings
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined
  #run: Promise<void> | undefined
  #isStopped = false

  constructor(cmd: Connection, keys: PoolKeys, settings: RecovererSettings, logger: Logger) {
    this.#cmd = cmd
    this.#keys = keys
    this.#settings = settings
    this.#rescue = {
      budget: RESCUE_BUDGET,
      deadLetterCap: settings.deadLetterCap,
      resultTtlMs: settings.resultTtlMs,
    }
    this.#logger = logger
  }

  start(): void {
    if (this.#timer !== undefined || this.#isStopped) return
    this.#timer = setInterval(() => {
      this.#run ??= this.#recover().finally(() => {
        this.#run = undefined
      })
    }, this.#settings.intervalMs)
  }

  /** Stops looking; resolves once a rescue in flight has ended. */
  stop(): Promise<void> {
    this.#isStopped = true
    clearInterval(this.#timer)
    return this.#run ?? Promise.resolve()
  }

  async #recover(): Promise<void> {
    try {
      const { removed, moved, lettered, dropped } = await rescueJobs(this.#cmd, this.#keys, this.#rescue, {
        mode: 'dead',
      })
      if (removed || moved || lettered || dropped) {
        this.#logger.info({ removed, moved, lettered, dropped }, 'rescued the jobs of dead workers')
      }
      if (moved || lettered) notify(this.#settings.metrics, 'rescued', this.#settings.pool, moved, lettered)
    } catch (err) {
      if (!this.#isStopped)
        this.#logger.warn({ err }, 'rescuing the jobs of dead workers failed; trying again')
    }
  }
}
