import { entryFields } from '../protocol/codec.js'
import { HedgeyardError, invalidArgument } from '../protocol/errors.js'
import { jobIdFactory } from '../protocol/job-id.js'
import type { PoolKeys } from '../protocol/keys.js'
import { retryDeadLetterIds } from '../protocol/scripts/retry-dead.js'
import { checkInt, checkMs } from '../protocol/validate.js'
import { DEFAULT_MAX_ATTEMPTS } from '../protocol/wire.js'
import type { Connection } from '../redis/connection.js'
import { type PoolRef, refKeys } from './inspect-pool.js'
import { withConnection } from './with-connection.js'

/** One entry of the dead-letter stream. */
export interface DeadLetter {
  /** Its id in the dead-letter stream. */
  deadId: string
  jobId: string
  reason: string
  /** The worker that held it last. */
  workerId: string
  attempt: number
  session: string
  /** The request as JSON. */
  payload: string
  /** The maxAttempts it was submitted with. */
  maxAttempts: number
}

const nextId = jobIdFactory()

function toDeadLetter(deadId: string, fields: string[]): DeadLetter {
  // A letter's own fields come first (reason, worker, entry), then the entry's.
  const letter: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length && i < 6; i += 2)
    letter[fields[i] as string] = fields[i + 1] as string
  const f = entryFields(fields.slice(6))
  return {
    deadId,
    jobId: f.id ?? '',
    reason: letter.reason ?? '',
    workerId: letter.worker ?? '',
    attempt: Number(f.attempt ?? 1),
    session: f.session ?? '',
    payload: f.payload ?? '',
    maxAttempts: Number(f.max ?? DEFAULT_MAX_ATTEMPTS),
  }
}

/** The oldest `count` dead letters of a pool. */
export async function listDeadLetters(ref: PoolRef & { count?: number }): Promise<DeadLetter[]> {
  const keys = refKeys(ref)
  const count = checkInt('count', ref.count ?? 100, 1)
  return withConnection(ref.redis, 'dead-list', async (conn) => {
    const entries = (await conn.xrange(keys.dead, '-', '+', 'COUNT', count)) as [string, string[]][]
    return entries.map(([id, fields]) => toDeadLetter(id, fields))
  })
}

/**
 * Dispatches dead letters again as new jobs (new job ids, attempt 1) and removes them from the
 * dead-letter stream, each in one atomic step: a letter is never lost to a failure (the call
 * changes nothing then) nor dispatched twice by two retries at once. Their results are kept under
 * `res:<newJobId>` for the result TTL. Resolves with each retried letter and the job id it got;
 * letters no worker had room for stay.
 * @throws HedgeyardError INVALID_ARGUMENT for bad options, NOT_FOUND when a given id is not in the
 * dead letters (nothing is retried then), REDIS_UNAVAILABLE (and the other REDIS_* codes) when
 * Redis fails: no letter has moved then.
 */
export async function retryDeadLetters(
  ref: PoolRef & { deadIds?: string[]; all?: boolean; timeoutMs?: number; affinityTtlMs?: number },
): Promise<{ deadId: string; jobId: string; workerId: string }[]> {
  const keys = refKeys(ref)
  if (!ref.all && (ref.deadIds === undefined || ref.deadIds.length === 0)) {
    throw invalidArgument('retry needs deadIds, or all: true')
  }
  checkDeadIds(ref.deadIds)
  const timeoutMs = checkMs('timeoutMs', ref.timeoutMs ?? 60_000, 1)
  const affinityTtlMs = checkInt('affinityTtlMs', ref.affinityTtlMs ?? 30_000, 1)
  return withConnection(ref.redis, 'dead-retry', async (conn) => {
    if (!ref.all) await requireLetters(conn, keys, ref.pool, ref.deadIds ?? [])
    const deadIds = ref.all
      ? ((await conn.xrange(keys.dead, '-', '+')) as [string, string[]][]).map(([id]) => id)
      : (ref.deadIds ?? [])
    const retried: { deadId: string; jobId: string; workerId: string }[] = []
    for (let start = 0; start < deadIds.length; start += RETRY_BATCH) {
      const letters = deadIds.slice(start, start + RETRY_BATCH).map((deadId) => ({ deadId, jobId: nextId() }))
      const settings = { affinityTtlMs, timeoutMs, producerId: 'dead-retry' }
      const outcomes = await retryDeadLetterIds(conn, keys, settings, letters)
      letters.forEach((letter, i) => {
        const outcome = outcomes[i]
        if (outcome?.status === 'queued') retried.push({ ...letter, workerId: outcome.workerId })
      })
    }
    return retried
  })
}

/** Letters one retry call moves: bounds how long one call holds Redis. */
const RETRY_BATCH = 100

/** Fails unless each id is a stream id. */
function checkDeadIds(deadIds: unknown[] | undefined): void {
  for (const id of deadIds ?? []) {
    if (typeof id !== 'string' || !/^\d+-\d+$/.test(id)) {
      throw invalidArgument(`deadIds must be stream ids such as 1700000000000-0 (got ${JSON.stringify(id)})`)
    }
  }
}

/**
 * Fails with NOT_FOUND, naming them, when some of the ids are not in the dead letters: a mistyped
 * id must not pass for a letter that was dealt with.
 */
async function requireLetters(
  conn: Connection,
  keys: PoolKeys,
  pool: string,
  deadIds: string[],
): Promise<void> {
  const pipeline = conn.pipeline()
  for (const id of deadIds) pipeline.xrange(keys.dead, id, id)
  const replies = (await pipeline.exec()) ?? []
  const missing = deadIds.filter((_, i) => {
    const [err, found] = replies[i] ?? [null, []]
    if (err) throw err
    return !Array.isArray(found) || found.length === 0
  })
  if (missing.length > 0) {
    throw new HedgeyardError('NOT_FOUND', `no such dead letter in pool '${pool}': ${missing.join(', ')}`)
  }
}

/**
 * Deletes the given dead letters, or all of them; resolves with how many were deleted.
 * @throws HedgeyardError INVALID_ARGUMENT for bad options, NOT_FOUND when a given id is not in the
 * dead letters (nothing is deleted then), REDIS_UNAVAILABLE (and the other REDIS_* codes) when
 * Redis fails.
 */
export async function purgeDeadLetters(
  ref: PoolRef & { deadIds?: string[]; all?: boolean },
): Promise<number> {
  const keys = refKeys(ref)
  if (!ref.all && (ref.deadIds === undefined || ref.deadIds.length === 0)) {
    throw invalidArgument('purge needs deadIds, or all: true')
  }
  checkDeadIds(ref.deadIds)
  return withConnection(ref.redis, 'dead-purge', async (conn) => {
    if (ref.all) {
      const replies = await conn.multi().xlen(keys.dead).del(keys.dead).exec()
      return Number(replies?.[0]?.[1] ?? 0)
    }
    await requireLetters(conn, keys, ref.pool, ref.deadIds ?? [])
    return conn.xdel(keys.dead, ...(ref.deadIds ?? []))
  })
}
