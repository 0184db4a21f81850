import { type JobState, readJobState } from '../producer/job-state.js'
import { checkName } from '../protocol/validate.js'
import { type PoolRef, refKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/**
 * Where a job of a pool stands, from any host: 'pending', 'completed' with its result, 'failed'
 * with its error's code and message, or 'unknown' (never sent, or its result has expired).
 * @throws HedgeyardError INVALID_ARGUMENT for a bad id, REDIS_* when Redis fails.
 */
export async function getJob(ref: PoolRef, jobId: string): Promise<JobState> {
  const keys = refKeys(ref)
  checkName('jobId', jobId)
  return withConnection(ref.redis, 'job', (conn) => readJobState(conn, keys, jobId))
}
