import type { PoolKeys } from '../../protocol/keys.js'
import { deregisterWorkers } from '../../protocol/scripts/deregister.js'
import { type HeartbeatStatus, heartbeat } from '../../protocol/scripts/heartbeat.js'
import { registerWorkers, type WorkerRegistration } from '../../protocol/scripts/register.js'
import type { Connection } from '../../redis/connection.js'
import { RedisClock } from './redis-clock.js'

/**
 * The record of this process's workers in the pool: registering them (again), renewing their
 * leases, deregistering them. Each call that returns Redis time measures the clock offset.
 */
export class Registration {
  /** Redis time as measured by the last register or renew. */
  readonly clock = new RedisClock()
  readonly #cmd: Connection
  readonly #keys: PoolKeys
  readonly #worker: WorkerRegistration

  constructor(cmd: Connection, keys: PoolKeys, worker: WorkerRegistration) {
    this.#cmd = cmd
    this.#keys = keys
    this.#worker = worker
  }

  /** How long a worker counts as alive after its last renewal, in ms. */
  get leaseMs(): number {
    return this.#worker.leaseMs
  }

  /**
   * Registers `workerIds`, or registers them again (after Redis lost their keys): active, in
   * dispatch, with a lease of leaseMs.
   * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
   */
  async register(workerIds: readonly string[]): Promise<void> {
    const sentAt = Date.now()
    this.clock.measure(sentAt, await registerWorkers(this.#cmd, this.#keys, this.#worker, workerIds))
  }

  /**
   * Renews the leases of `workerIds`; returns what the heartbeat script found of each.
   * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
   */
  async renew(workerIds: readonly string[]): Promise<HeartbeatStatus[]> {
    const sentAt = Date.now()
    const { redisMs, statuses } = await heartbeat(this.#cmd, this.#keys, this.#worker.leaseMs, workerIds)
    this.clock.measure(sentAt, redisMs)
    return statuses
  }

  /**
   * Removes `workerIds` from the pool; one whose stream still holds entries stays, draining
   * ('BUSY'), for rescue to move them once its lease runs out.
   * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
   */
  deregister(workerIds: readonly string[]): Promise<('OK' | 'BUSY')[]> {
    return deregisterWorkers(this.#cmd, this.#keys, workerIds)
  }
}
