import { CANCEL_RESULT_TTL_MS, type CancelOutcome, endJob, outcomeOf } from '../producer/end-job.js'
import { checkName } from '../protocol/validate.js'
import { type PoolRef, refKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/**
 * Cancels a job of a pool from any host, by id: copies not started leave their workers' streams
 * (and free their load), running copies have their signal aborted, and the job's caller (its
 * `submit` or `stream`, and any `resume`) fails with CANCELLED. A finished or unknown job is left
 * as it is, and the answer says so.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name or job id, REDIS_UNAVAILABLE and the other
 * REDIS_* codes when Redis fails.
 */
export async function cancelJob(ref: PoolRef, jobId: string): Promise<CancelOutcome> {
  const keys = refKeys(ref)
  checkName('jobId', jobId)
  return withConnection(ref.redis, 'cancel', async (conn) => {
    const reply = await endJob(conn, keys, jobId, {
      code: 'CANCELLED',
      message: 'the job was cancelled',
      resultTtlMs: CANCEL_RESULT_TTL_MS,
    })
    return outcomeOf(reply)
  })
}
