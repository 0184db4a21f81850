import type { Connection } from '../../redis/connection.js'
import { copiesKey, outKey, type PoolKeys, resultKey } from '../keys.js'
import { badReply, callScript, replyArray, replyInteger, type ScriptSpec } from './call.js'

/** cancel.lua: stops a job's copies and, unless one is kept, ends the job (see its header). */
export const CANCEL: ScriptSpec = { name: 'cancel', fixedKeys: 5, hasKeysPerItem: false }

/** How a job ends, and which copies it stops. */
export interface CancelRequest {
  jobId: string
  /** The code of the failure the job ends with (CANCELLED, TIMEOUT, ABORTED, ...). */
  code: string
  message: string
  resultTtlMs: number
  /** Entry id of a copy to keep running (the winner of a hedged stream): the job does not end. */
  keepEntryId?: string
  /** Copies found by the caller (a plain job has no copies hash). */
  copies?: readonly { workerId: string; entryId: string }[]
}

/** What a cancel did. */
export interface CancelReply {
  status: 'CANCELLED' | 'FINISHED' | 'UNKNOWN'
  /** Copies told to stop while a worker held them. */
  stopped: number
  /** Copies removed from their workers' streams unread. */
  removed: number
}

const STATUSES = ['CANCELLED', 'FINISHED', 'UNKNOWN'] as const

/**
 * Runs cancel.lua for one job.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function cancelJobKeys(
  conn: Connection,
  keys: PoolKeys,
  req: CancelRequest,
): Promise<CancelReply> {
  const callKeys = [
    keys.load,
    keys.ready,
    resultKey(keys, req.jobId),
    copiesKey(keys, req.jobId),
    outKey(keys, req.jobId),
  ]
  const args: (string | number)[] = [
    keys.base,
    req.jobId,
    req.code,
    req.message,
    req.resultTtlMs,
    req.keepEntryId ?? '',
  ]
  for (const c of req.copies ?? []) args.push(c.workerId, c.entryId)
  const reply = replyArray(CANCEL, await callScript(conn, CANCEL, callKeys, args), 3)
  const status = reply[0]
  if (!STATUSES.includes(status as CancelReply['status'])) throw badReply(CANCEL, `status ${String(status)}`)
  return {
    status: status as CancelReply['status'],
    stopped: replyInteger(CANCEL, reply[1]),
    removed: replyInteger(CANCEL, reply[2]),
  }
}
