import type { Connection } from '../../redis/connection.js'
import { classLimitsKey, type PoolKeys, tenantQuotaKey } from '../keys.js'
import { callScript, replyInteger, type ScriptSpec } from './call.js'

/** correct-cost.lua: corrects cost budgets by what a job really cost (see its header). */
export const CORRECT_COST: ScriptSpec = { name: 'correctCost', fixedKeys: 2, hasKeysPerItem: true }

/**
 * Moves the pool's cost budget (and its tenant's, when given) by `deltaUnits`: what the worker
 * reported the job cost, less what it was charged. Returns how many budgets were corrected.
 * @throws HedgeyardError REDIS_UNAVAILABLE and the other REDIS_* codes when the call fails.
 */
export async function correctCost(
  conn: Connection,
  keys: PoolKeys,
  deltaUnits: number,
  tenant?: { limitKey: string; limitClass: string },
): Promise<number> {
  const callKeys = [keys.limits, keys.quota]
  if (tenant)
    callKeys.push(
      classLimitsKey(keys, tenant.limitClass),
      tenantQuotaKey(keys, tenant.limitClass, tenant.limitKey),
    )
  return replyInteger(CORRECT_COST, await callScript(conn, CORRECT_COST, callKeys, [Math.trunc(deltaUnits)]))
}
