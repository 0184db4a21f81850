import type { Connection } from '../../redis/connection.js'
import { claimKey, outKey, type PoolKeys, resultKey } from '../keys.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** claim.lua: which copies of racing or tied jobs still need running (see its header). */
export const CLAIM: ScriptSpec = { name: 'claim', fixedKeys: 1, hasKeysPerItem: true }

/** A copy about to start. */
export interface ClaimItem {
  jobId: string
  entryId: string
  race: string
  copy: number
}

/** What to do with a copy: run it, skip it (another copy won), or end it as lost mid-stream. */
export type ClaimVerdict = 'run' | 'skip' | 'owns-stream'
const VERDICTS: readonly ClaimVerdict[] = ['skip', 'run', 'owns-stream']

/**
 * Asks which of `items` the worker should run: 'skip' when another copy won its job, claimed it
 * first (tied) or began its stream (streamed); 'owns-stream' when this very copy began the job's
 * stream before its worker restarted (it cannot start over: its caller has chunks already).
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function claimJobs(
  conn: Connection,
  keys: PoolKeys,
  claimTtlMs: number,
  workerId: string,
  items: readonly ClaimItem[],
): Promise<ClaimVerdict[]> {
  const callKeys = [keys.alive]
  const args: (string | number)[] = [claimTtlMs, workerId]
  for (const item of items) {
    callKeys.push(
      resultKey(keys, item.jobId),
      item.race === 's' ? outKey(keys, item.jobId) : claimKey(keys, item.jobId, item.copy),
    )
    args.push(item.race, item.entryId)
  }
  const reply = replyArray(CLAIM, await callScript(conn, CLAIM, callKeys, args), items.length)
  return reply.map((v, i) => {
    if (v !== 0 && v !== 1 && v !== 2) throw badReply(CLAIM, `${String(v)} for job ${i + 1}`)
    return VERDICTS[v] as ClaimVerdict
  })
}
