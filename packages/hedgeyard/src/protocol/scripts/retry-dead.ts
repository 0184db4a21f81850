import type { Connection } from '../../redis/connection.js'
import type { PoolKeys } from '../keys.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** retry-dead.lua: queues dead letters again and removes them, each in one step (see its header). */
export const RETRY_DEAD: ScriptSpec = { name: 'retryDead', fixedKeys: 4, hasKeysPerItem: false }

/** What a retry-dead call carries besides its letters. */
export interface RetryDeadSettings {
  affinityTtlMs: number
  /** Timeout of the new jobs (ms). */
  timeoutMs: number
  /** The producer id whose channel the new jobs' results are published on. */
  producerId: string
}

/** What became of one letter: the worker it went to, or why it stayed (or was not there). */
export type RetryOutcome =
  | { status: 'queued'; workerId: string }
  | { status: 'SATURATED' | 'NO_WORKERS' | 'MISSING' | 'INVALID' }

const STAYED = ['SATURATED', 'NO_WORKERS', 'MISSING', 'INVALID'] as const

/**
 * Queues each dead letter again under its new job id and removes it from the dead letters.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails (no
 * letter is moved then).
 */
export async function retryDeadLetterIds(
  conn: Connection,
  keys: PoolKeys,
  settings: RetryDeadSettings,
  letters: readonly { deadId: string; jobId: string }[],
): Promise<RetryOutcome[]> {
  const args: (string | number)[] = [
    keys.base,
    Math.floor(Math.random() * 2 ** 31),
    settings.affinityTtlMs,
    settings.timeoutMs,
    settings.producerId,
  ]
  for (const { deadId, jobId } of letters) args.push(deadId, jobId)
  const reply = replyArray(
    RETRY_DEAD,
    await callScript(conn, RETRY_DEAD, [keys.load, keys.ready, keys.alive, keys.dead], args),
    letters.length,
  )
  return reply.map((value, i): RetryOutcome => {
    if (typeof value !== 'string') throw badReply(RETRY_DEAD, `${String(value)} for letter ${i + 1}`)
    const stayed = STAYED.find((status) => status === value)
    return stayed === undefined ? { status: 'queued', workerId: value } : { status: stayed }
  })
}
