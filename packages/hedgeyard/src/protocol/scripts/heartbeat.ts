import type { Connection } from '../../redis/connection.js'
import { type PoolKeys, queueKey, workerKey } from '../keys.js'
import { callScript, replyArray, replyInteger, replyStatus, type ScriptSpec } from './call.js'

/** heartbeat.lua: renews leases and heals the pool's bookkeeping (see its header). */
export const HEARTBEAT: ScriptSpec = { name: 'heartbeat', fixedKeys: 4, hasKeysPerItem: true }

/** What the heartbeat found of a worker (see the header of heartbeat.lua). */
export type HeartbeatStatus = 'OK' | 'DRAINING' | 'GONE' | 'BROKEN'

const STATUSES: readonly HeartbeatStatus[] = ['OK', 'DRAINING', 'GONE', 'BROKEN']

/**
 * Renews the leases of `workerIds`; returns Redis time (ms) and one status per worker.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function heartbeat(
  conn: Connection,
  keys: PoolKeys,
  leaseMs: number,
  workerIds: readonly string[],
): Promise<{ redisMs: number; statuses: HeartbeatStatus[] }> {
  const callKeys = [keys.load, keys.ready, keys.alive, keys.dead]
  for (const w of workerIds) callKeys.push(workerKey(keys, w), queueKey(keys, w))
  const reply = replyArray(
    HEARTBEAT,
    await callScript(conn, HEARTBEAT, callKeys, [leaseMs, ...workerIds]),
    workerIds.length + 1,
  )
  return {
    redisMs: replyInteger(HEARTBEAT, reply[0]),
    statuses: reply.slice(1).map((s) => replyStatus(HEARTBEAT, s, STATUSES)),
  }
}
