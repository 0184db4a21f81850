import type { Connection } from '../../redis/connection.js'
import { type PoolKeys, workerKey } from '../keys.js'
import { callScript, replyInteger, type ScriptSpec } from './call.js'

/** drain.lua: takes workers out of dispatch (see its header). */
export const DRAIN: ScriptSpec = { name: 'drain', fixedKeys: 1, hasKeysPerItem: true }

/**
 * Marks `workerIds` draining; returns how many were found.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function drainWorkerKeys(
  conn: Connection,
  keys: PoolKeys,
  workerIds: readonly string[],
): Promise<number> {
  const callKeys = [keys.ready, ...workerIds.map((w) => workerKey(keys, w))]
  return replyInteger(DRAIN, await callScript(conn, DRAIN, callKeys, workerIds))
}
