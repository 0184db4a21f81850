import { DispatchBatcher } from '../producer/dispatch-batcher.js'
import { DEFAULT_MAX_ATTEMPTS } from '../protocol/codec.js'
import { invalidArgument } from '../protocol/errors.js'
import { jobIdFactory } from '../protocol/job-id.js'
import { checkInt, checkMs } from '../protocol/validate.js'
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
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string
  return {
    deadId,
    jobId: f.id ?? '',
    reason: f.reason ?? '',
    workerId: f.worker ?? '',
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
 * dead-letter stream. Their results are kept under `res:<newJobId>` for the result TTL.
 * Resolves with each retried letter and the job id it got; letters no worker had room for stay.
 */
export async function retryDeadLetters(
  ref: PoolRef & { deadIds?: string[]; all?: boolean; timeoutMs?: number; affinityTtlMs?: number },
): Promise<{ deadId: string; jobId: string; workerId: string }[]> {
  const keys = refKeys(ref)
  if (!ref.all && (ref.deadIds === undefined || ref.deadIds.length === 0)) {
    throw invalidArgument('retry needs deadIds, or all: true')
  }
  const timeoutMs = checkMs('timeoutMs', ref.timeoutMs ?? 60_000, 1)
  const affinityTtlMs = checkInt('affinityTtlMs', ref.affinityTtlMs ?? 30_000, 1)
  return withConnection(ref.redis, 'dead-retry', async (conn) => {
    const found = ref.all
      ? ((await conn.xrange(keys.dead, '-', '+')) as [string, string[]][])
      : (
          await Promise.all(
            (ref.deadIds ?? []).map(
              async (id) => (await conn.xrange(keys.dead, id, id)) as [string, string[]][],
            ),
          )
        ).flat()
    // Deleting a letter first claims it: two retries at once cannot dispatch it twice.
    const owned: { letter: DeadLetter; fields: string[] }[] = []
    for (const [id, fields] of found) {
      if ((await conn.xdel(keys.dead, id)) === 1) owned.push({ letter: toDeadLetter(id, fields), fields })
    }
    const batcher = new DispatchBatcher(conn, keys, 'dead-retry', affinityTtlMs, undefined)
    const outcomes = await Promise.all(
      owned.map(({ letter, fields }) => {
        const jobId = nextId()
        return batcher
          .dispatch({
            jobId,
            session: letter.session,
            payload: letter.payload,
            timeoutMs,
            attempt: 1,
            maxAttempts: letter.maxAttempts,
            exclude: '',
            race: '',
            copies: 1,
          })
          .then((outcome) => ({ letter, fields, jobId, outcome }))
      }),
    )
    const retried: { deadId: string; jobId: string; workerId: string }[] = []
    for (const { letter, fields, jobId, outcome } of outcomes) {
      if (outcome.status === 'queued')
        retried.push({ deadId: letter.deadId, jobId, workerId: outcome.workerId })
      // No worker had room: the letter goes back (under a new id) for a later retry.
      else await conn.xadd(keys.dead, '*', ...fields)
    }
    return retried
  })
}

/** Deletes the given dead letters, or all of them; resolves with how many were deleted. */
export async function purgeDeadLetters(
  ref: PoolRef & { deadIds?: string[]; all?: boolean },
): Promise<number> {
  const keys = refKeys(ref)
  if (!ref.all && (ref.deadIds === undefined || ref.deadIds.length === 0)) {
    throw invalidArgument('purge needs deadIds, or all: true')
  }
  return withConnection(ref.redis, 'dead-purge', async (conn) => {
    if (ref.all) {
      const replies = await conn.multi().xlen(keys.dead).del(keys.dead).exec()
      return Number(replies?.[0]?.[1] ?? 0)
    }
    return conn.xdel(keys.dead, ...(ref.deadIds ?? []))
  })
}
