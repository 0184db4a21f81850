import type { Connection } from '../../redis/connection.js'
import { claimKey, type PoolKeys, resultKey } from '../keys.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** claim.lua: which copies of racing or tied jobs still need running (see its header). */
export const CLAIM: ScriptSpec = { name: 'claim', fixedKeys: 1, hasKeysPerItem: true }

/** A copy about to start. */
export interface ClaimItem {
  jobId: string
  race: string
  copy: number
}

/**
 * Asks which of `items` the worker should run: true to run it, false when another copy won its
 * job or, for a tied pair, claimed it first.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function claimJobs(
  conn: Connection,
  keys: PoolKeys,
  claimTtlMs: number,
  workerId: string,
  items: readonly ClaimItem[],
): Promise<boolean[]> {
  const callKeys = [keys.alive]
  const args: (string | number)[] = [claimTtlMs, workerId]
  for (const item of items) {
    callKeys.push(resultKey(keys, item.jobId), claimKey(keys, item.jobId, item.copy))
    args.push(item.race)
  }
  const reply = replyArray(CLAIM, await callScript(conn, CLAIM, callKeys, args), items.length)
  return reply.map((v, i) => {
    if (v !== 0 && v !== 1) throw badReply(CLAIM, `${String(v)} for job ${i + 1}`)
    return v === 1
  })
}
