import { WORKER_DEFAULTS } from '../consumer/start-workers.js'
import { rescueJobs } from '../protocol/scripts/rescue.js'
import { checkInt, checkMs } from '../protocol/validate.js'
import { type PoolRef, refKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/** What {@link forgetDeadWorkers} did. */
export interface ForgetDeadResult {
  /** Dead workers removed from the pool with their keys (hash, stream, load, lease). */
  removed: number
  /** Their jobs moved to live workers. */
  moved: number
  /** Their jobs sent to the dead letters: no worker alive, out of attempts, or an invalid entry. */
  lettered: number
  /** Their jobs dropped: past their deadline (the caller had TIMEOUT), or streamed and lost mid-stream. */
  dropped: number
  /**
   * Dead workers still registered afterwards: live workers had no room for their jobs yet, and
   * the live workers' own rescue moves them as room frees.
   */
  waiting: string[]
}

/** Entries one rescue call moves at most: a call holds Redis for its whole run. */
const BUDGET = 500

/**
 * Removes the workers of a pool whose lease ended (or that have none), from any host: their jobs
 * move to live workers with room, as a live worker's rescue moves them, or to the dead letters with
 * a reason when no worker of the pool is alive (`hedgeyard dead retry` sends them again later).
 * Each step is one atomic rescue script that decides who is dead when it runs, so a worker that
 * renews its lease in between is left alone, and one that comes back later finds its registration
 * gone and registers again; a worker key or entry of another type is dropped or dead-lettered
 * without stopping the others. A worker without any lease counts as dead: after `alive` was lost,
 * wait a heartbeat (`leaseMs / 3`) for the live workers to write theirs again.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name or option, REDIS_UNAVAILABLE (and the
 * other REDIS_* codes, e.g. a pool ZSET of another type) when Redis fails.
 */
export async function forgetDeadWorkers(
  ref: PoolRef & { deadLetterCap?: number; resultTtlMs?: number },
): Promise<ForgetDeadResult> {
  const keys = refKeys(ref)
  const settings = {
    budget: BUDGET,
    deadLetterCap: checkInt('deadLetterCap', ref.deadLetterCap ?? WORKER_DEFAULTS.deadLetterCap, 1),
    resultTtlMs: checkMs('resultTtlMs', ref.resultTtlMs ?? WORKER_DEFAULTS.resultTtlMs, 1),
  }
  return withConnection(ref.redis, 'forget-dead', async (conn) => {
    const total: ForgetDeadResult = { removed: 0, moved: 0, lettered: 0, dropped: 0, waiting: [] }
    for (;;) {
      const r = await rescueJobs(conn, keys, settings, { mode: 'forget' })
      total.removed += r.removed
      total.moved += r.moved
      total.lettered += r.lettered
      total.dropped += r.dropped
      if (r.removed + r.moved + r.lettered + r.dropped === 0) break
    }
    const [loads, leases, time] = await Promise.all([
      conn.zrange(keys.load, '0', '-1'),
      conn.zrange(keys.alive, '0', '-1', 'WITHSCORES'),
      conn.time(),
    ])
    const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
    const leaseOf = new Map<string, number>()
    for (let i = 0; i + 1 < leases.length; i += 2) leaseOf.set(leases[i] as string, Number(leases[i + 1]))
    const ids = new Set([...loads, ...leaseOf.keys()])
    total.waiting = [...ids].filter((id) => !((leaseOf.get(id) ?? 0) >= nowMs)).sort()
    return total
  })
}
