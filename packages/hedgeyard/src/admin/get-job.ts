import { type JobState, readJobState } from '../producer/job-state.js'
import { checkName } from '../protocol/validate.js'
import { type JobPoolRef, refCellKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/**
 * Where a job of a pool stands, from any host: 'pending', 'completed' with its result, 'failed'
 * with its error's code and message, or 'unknown' (never sent, or its result has expired). With
 * `cells`, the job is looked for in every cell of the logical pool at once, as
 * `CellDispatcher.getJob` does.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, count or id, REDIS_* when Redis fails.
 */
export async function getJob(ref: JobPoolRef, jobId: string): Promise<JobState> {
  const cells = refCellKeys(ref)
  checkName('jobId', jobId)
  return withConnection(ref.redis, 'job', async (conn) => {
    const states = await Promise.all(cells.map((keys) => readJobState(conn, keys, jobId)))
    return states.find((s) => s.status !== 'unknown') ?? { status: 'unknown' }
  })
}
