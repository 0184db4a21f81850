import type { Connection } from '../../redis/connection.js'
import { type PoolKeys, queueKey, workerKey } from '../keys.js'
import { callScript, replyInteger, type ScriptSpec } from './call.js'

/** register.lua: adds workers to the pool (see its header). */
export const REGISTER: ScriptSpec = { name: 'register', fixedKeys: 3, hasKeysPerItem: true }

/** What the workers of one process tell the pool about themselves. */
export interface WorkerRegistration {
  leaseMs: number
  host: string
  pid: number
  concurrency: number
  /** Concurrency plus queue capacity: the most jobs a worker holds. */
  capacity: number
  /** Consecutive failures that open a worker's breaker; 0 for no breaker. @defaultValue 0 */
  breakerFailures?: number
  /** How long an open breaker keeps its worker out of dispatch before a probe. @defaultValue 5000 */
  breakerCoolOffMs?: number
}

/**
 * Registers (or registers again) `workerIds`; returns Redis time in ms.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function registerWorkers(
  conn: Connection,
  keys: PoolKeys,
  registration: WorkerRegistration,
  workerIds: readonly string[],
): Promise<number> {
  const callKeys = [keys.load, keys.ready, keys.alive]
  for (const w of workerIds) callKeys.push(workerKey(keys, w), queueKey(keys, w))
  const { leaseMs, host, pid, concurrency, capacity } = registration
  const breaker = [registration.breakerFailures ?? 0, registration.breakerCoolOffMs ?? 5_000]
  const args = [leaseMs, host, pid, concurrency, capacity, ...breaker, ...workerIds]
  return replyInteger(REGISTER, await callScript(conn, REGISTER, callKeys, args))
}
