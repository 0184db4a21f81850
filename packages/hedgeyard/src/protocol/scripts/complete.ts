import type { Connection } from '../../redis/connection.js'
import { type PoolKeys, queueKey, workerKey } from '../keys.js'
import { callScript, replyArray, replyStatus, type ScriptSpec } from './call.js'

/** complete.lua: finishes a batch of jobs of the workers of one process (see its header). */
export const COMPLETE: ScriptSpec = { name: 'complete', fixedKeys: 3, hasKeysPerItem: true }

/**
 * How a job ended on the worker: 'ok' / 'err' ran the handler; 'skip' did not run it; 'dead'
 * cannot run it (the entry goes to the dead letters, the envelope field holding the reason).
 */
export type Outcome = 'ok' | 'err' | 'skip' | 'dead'

/**
 * One finished job. The job it is, its producer, copy, race mode and result TTL are read from the
 * entry by the script: a worker names only the entry of its own stream.
 */
export interface Completion {
  workerId: string
  entryId: string
  outcome: Outcome
  envelope: string
}

/** What a complete call carries besides its jobs. */
export interface CompleteSettings {
  /** How long results are kept when the entry does not say (ms). */
  resultTtlMs: number
  /** Most entries the dead-letter stream keeps (trimmed approximately). */
  deadLetterCap: number
}

/** The script's answer for one job: stored ('OK'), dropped as a second result ('DUP') or refused ('LOST'). */
export type CompleteStatus = 'OK' | 'DUP' | 'LOST'

const STATUSES: readonly CompleteStatus[] = ['OK', 'DUP', 'LOST']

/**
 * KEYS and ARGV of one complete call (see the header of complete.lua): completions of one worker
 * with one outcome become one group of two arguments per job; each worker names the first and
 * last of its entries, so that the script reads them all with one XRANGE. Returns the completions in the order
 * of the groups, which is the order of the script's statuses.
 */
export function completeArgs(
  keys: PoolKeys,
  settings: CompleteSettings,
  jobs: readonly Completion[],
): { keys: string[]; args: (string | number)[]; order: Completion[] } {
  const workers: { id: string; first: string; last: string }[] = []
  const groups = new Map<string, Completion[]>()
  let w: { id: string; first: string; last: string } | undefined
  let prev: Completion | undefined
  let prevGroup: Completion[] = []
  for (const c of jobs) {
    // A batch is mostly runs of one worker's jobs with one outcome: the group's key is made only
    // when the run changes.
    if (prev === undefined || prev.outcome !== c.outcome || prev.workerId !== c.workerId) {
      const key = `${c.outcome} ${c.workerId}`
      const group = groups.get(key)
      if (group === undefined) {
        prevGroup = []
        groups.set(key, prevGroup)
      } else prevGroup = group
    }
    prevGroup.push(c)
    prev = c
    // A batch is mostly one worker's: look it up only when the worker changes.
    if (w === undefined || w.id !== c.workerId) w = workers.find((x) => x.id === c.workerId)
    if (w === undefined) {
      w = { id: c.workerId, first: c.entryId, last: c.entryId }
      workers.push(w)
    } else {
      if (isEarlierId(c.entryId, w.first)) w.first = c.entryId
      if (isEarlierId(w.last, c.entryId)) w.last = c.entryId
    }
  }
  const callKeys = [keys.load, keys.ready, keys.dead]
  const args: (string | number)[] = [keys.base, settings.resultTtlMs, settings.deadLetterCap, workers.length]
  for (const w of workers) {
    callKeys.push(queueKey(keys, w.id), workerKey(keys, w.id))
    args.push(w.id, w.first, w.last)
  }
  args.push(jobs.length)
  const order: Completion[] = []
  for (const group of groups.values()) {
    const first = group[0] as Completion
    args.push(workers.findIndex((w) => w.id === first.workerId) + 1, first.outcome, group.length)
    for (const c of group) {
      order.push(c)
      args.push(c.entryId, c.envelope)
    }
  }
  return { keys: callKeys, args, order }
}

/**
 * Whether stream entry id `a` (`<ms>-<seq>`, decimal) comes before `b`: compared as text, without
 * parsing (this runs twice per completed job). A longer number is the larger one.
 */
function isEarlierId(a: string, b: string): boolean {
  const da = a.indexOf('-')
  const db = b.indexOf('-')
  if (da !== db) return da < db
  // Same length with the dash in the same place: the parts have the same lengths, so the text
  // compares as the numbers do (the common case: ids of one batch, read together).
  if (a.length === b.length) return a < b
  for (let i = 0; i < da; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i)
    if (d !== 0) return d < 0
  }
  const la = a.length - da
  const lb = b.length - db
  if (la !== lb) return la < lb
  for (let i = da + 1; i < a.length; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i)
    if (d !== 0) return d < 0
  }
  return false
}
/**
 * Completes a batch of jobs in one script call; returns the completions in the order of the
 * statuses, and the statuses.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails,
 * PROTOCOL_ERROR for a reply the script should not give.
 */
export async function completeJobs(
  conn: Connection,
  keys: PoolKeys,
  settings: CompleteSettings,
  jobs: readonly Completion[],
): Promise<{ order: Completion[]; statuses: CompleteStatus[] }> {
  const call = completeArgs(keys, settings, jobs)
  const reply = replyArray(COMPLETE, await callScript(conn, COMPLETE, call.keys, call.args), jobs.length)
  const statuses = reply.map((status) => replyStatus(COMPLETE, status, STATUSES))
  return { order: call.order, statuses }
}
