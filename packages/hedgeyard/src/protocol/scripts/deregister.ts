import type { Connection } from '../../redis/connection.js'
import { type PoolKeys, queueKey, workerKey } from '../keys.js'
import { callScript, replyArray, replyStatus, type ScriptSpec } from './call.js'

/** deregister.lua: removes workers with empty streams from the pool (see its header). */
export const DEREGISTER: ScriptSpec = { name: 'deregister', fixedKeys: 3, hasKeysPerItem: true }

/**
 * Removes `workerIds` from the pool; a worker whose stream still holds entries stays, draining
 * ('BUSY'), so that nothing is lost.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function deregisterWorkers(
  conn: Connection,
  keys: PoolKeys,
  workerIds: readonly string[],
): Promise<('OK' | 'BUSY')[]> {
  const callKeys = [keys.load, keys.ready, keys.alive]
  for (const w of workerIds) callKeys.push(workerKey(keys, w), queueKey(keys, w))
  const reply = replyArray(
    DEREGISTER,
    await callScript(conn, DEREGISTER, callKeys, workerIds),
    workerIds.length,
  )
  return reply.map((s) => replyStatus(DEREGISTER, s, ['OK', 'BUSY'] as const))
}
