import type { Connection } from '../../redis/connection.js'
import type { PoolKeys } from '../keys.js'
import { badReply, callScript, replyArray, type ScriptSpec } from './call.js'

/** rescue.lua: moves the jobs of workers that left to live workers (see its header). */
export const RESCUE: ScriptSpec = { name: 'rescue', fixedKeys: 4, hasKeysPerItem: false }

/** What a rescue call carries besides its mode. */
export interface RescueSettings {
  /** Most entries to move in this call; the rest wait for the next call. */
  budget: number
  deadLetterCap: number
  /** How long a DEAD_LETTERED answer is kept when the entry does not say (ms). */
  resultTtlMs: number
}

/** Which entries move: see the modes in the header of rescue.lua. */
export type RescueMode =
  | { mode: 'dead' }
  | { mode: 'handback'; workerIds: readonly string[] }
  | { mode: 'return'; workerId: string; entryIds: readonly string[] }
  | { mode: 'forget' }

/** What one rescue call did. `handled` counts the given entry ids dealt with (mode 'return'). */
export interface RescueResult {
  removed: number
  moved: number
  lettered: number
  dropped: number
  handled: number
}

/**
 * Runs the rescue script once.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function rescueJobs(
  conn: Connection,
  keys: PoolKeys,
  settings: RescueSettings,
  what: RescueMode,
): Promise<RescueResult> {
  const args: (string | number)[] = [
    keys.base,
    Math.floor(Math.random() * 2 ** 31),
    what.mode,
    settings.budget,
    settings.deadLetterCap,
    settings.resultTtlMs,
  ]
  if (what.mode === 'handback') args.push(...what.workerIds)
  if (what.mode === 'return') args.push(what.workerId, ...what.entryIds)
  const reply = replyArray(
    RESCUE,
    await callScript(conn, RESCUE, [keys.load, keys.ready, keys.alive, keys.dead], args),
  )
  const counts = reply.map(Number)
  const expected = what.mode === 'return' ? 5 : 4
  if (counts.length !== expected || counts.some((n) => !Number.isInteger(n) || n < 0)) {
    throw badReply(RESCUE, `[${reply.join(', ')}] where ${expected} counts were expected`)
  }
  const [removed = 0, moved = 0, lettered = 0, dropped = 0, handled = 0] = counts
  return { removed, moved, lettered, dropped, handled }
}
