import { drainWorkerKeys } from '../protocol/scripts/drain.js'
import { checkName } from '../protocol/validate.js'
import { type PoolRef, refKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/**
 * Asks workers of a pool to drain, from any host: dispatch skips them at once, and each worker
 * notices on its next heartbeat, hands back its unread jobs, finishes the running ones and leaves.
 * Resolves with the ids that were found.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function drainWorkers(ref: PoolRef, workerIds: string[]): Promise<string[]> {
  const keys = refKeys(ref)
  for (const id of workerIds) checkName('workerId', id)
  return withConnection(ref.redis, 'drain', async (conn) => {
    const found: string[] = []
    for (const id of workerIds) {
      if ((await drainWorkerKeys(conn, keys, [id])) === 1) found.push(id)
    }
    return found
  })
}
