import { CANCEL_RESULT_TTL_MS, type CancelOutcome, endJob, outcomeOf } from '../producer/end-job.js'
import { checkName } from '../protocol/validate.js'
import { type JobPoolRef, refCellKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/**
 * Cancels a job of a pool from any host, by id: copies not started leave their workers' streams
 * (and free their load), running copies have their signal aborted, and the job's caller (its
 * `submit` or `stream`, and any `resume`) fails with CANCELLED. A finished or unknown job is left
 * as it is, and the answer says so. With `cells`, every cell of the logical pool is asked at once
 * and only the one that holds the job changes anything, as `CellDispatcher.cancel` does.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, count or job id, REDIS_UNAVAILABLE and the
 * other REDIS_* codes when Redis fails.
 */
export async function cancelJob(ref: JobPoolRef, jobId: string): Promise<CancelOutcome> {
  const cells = refCellKeys(ref)
  checkName('jobId', jobId)
  const end = { code: 'CANCELLED', message: 'the job was cancelled', resultTtlMs: CANCEL_RESULT_TTL_MS }
  return withConnection(ref.redis, 'cancel', async (conn) => {
    const outcomes = await Promise.all(
      cells.map(async (keys) => outcomeOf(await endJob(conn, keys, jobId, end))),
    )
    if (outcomes.includes('cancelled')) return 'cancelled'
    return outcomes.includes('finished') ? 'finished' : 'unknown'
  })
}
