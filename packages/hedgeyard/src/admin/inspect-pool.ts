import { cellPools, checkCells } from '../cells/cell-pools.js'
import { readProducerStats } from '../observe/stats-reporter.js'
import { readWorkerMetrics, type WorkerMetrics } from '../observe/worker-metrics.js'
import type { DispatcherStats } from '../producer/dispatcher.js'
import { type PoolKeys, poolKeys } from '../protocol/keys.js'
import { checkName } from '../protocol/validate.js'
import type { RedisInput } from '../redis/connection.js'
import { withConnection } from './with-connection.js'

/** Where a pool is, for the operator tools. */
export interface PoolRef {
  redis: RedisInput
  pool: string
  /** @defaultValue 'hy' */
  prefix?: string
}

/** Validates a pool reference and returns its keys. */
export function refKeys(ref: PoolRef) {
  return poolKeys(checkName('prefix', ref.prefix ?? 'hy'), checkName('pool', ref.pool))
}

/**
 * A pool that may be a logical pool over cells (docs/cells.md), for the tools that find a job by
 * id: its id does not name its cell, so they look in every one.
 */
export interface JobPoolRef extends PoolRef {
  /** The pool's cells: `pool` is then the logical pool, `chat` for the cells `chat.0` ... */
  cells?: number
}

/** Validates a reference and returns the keys of its pool, or of each of its cells. */
export function refCellKeys(ref: JobPoolRef): PoolKeys[] {
  if (ref.cells === undefined) return [refKeys(ref)]
  const prefix = checkName('prefix', ref.prefix ?? 'hy')
  return cellPools(ref.pool, checkCells(ref.cells)).map((pool) => poolKeys(prefix, pool))
}

/**
 * Reads the metrics of every worker of a pool with a short-lived connection, for tools that do
 * not dispatch (the CLI's `inspect`).
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function inspectPool(ref: PoolRef): Promise<WorkerMetrics[]> {
  const keys = refKeys(ref)
  return withConnection(ref.redis, 'inspect', (conn) => readWorkerMetrics(conn, keys))
}

/** A producer's counters as it last reported them (every few seconds, and when it closes). */
export interface ProducerStats extends DispatcherStats {
  producerId: string
  reportedAt: number
  /** Median time of its last (up to 1,000) successful submits, in ms; undefined before the first. */
  latencyP50Ms: number | undefined
  /** Their 99th percentile, in ms; undefined before the first. */
  latencyP99Ms: number | undefined
}

/** The counters a dispatcher reports, by name: one list for reading them back. */
const COUNTERS: readonly (keyof DispatcherStats)[] = [
  'submitted',
  'succeeded',
  'failed',
  'affinityHits',
  'affinityMisses',
  'saturated',
  'rateLimited',
  'throttled',
  'hedgesSent',
  'hedgesWon',
  'hedgesCancelled',
  'hedgesDenied',
  'retriesSent',
  'autoDelayMs',
]

/**
 * Reads the counters of the producers (dispatchers) of a pool that reported recently.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad name, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function inspectProducers(ref: PoolRef): Promise<ProducerStats[]> {
  const keys = refKeys(ref)
  return withConnection(ref.redis, 'inspect', async (conn) =>
    toProducerStats(await readProducerStats(conn, keys)),
  )
}

/** Typed producer reports from their HASH fields (a field that is not a number reads as 0). */
export function toProducerStats(all: Record<string, Record<string, string>>): ProducerStats[] {
  const ms = (v: string | undefined) => {
    const n = Number(v ?? -1)
    return Number.isFinite(n) && n >= 0 ? n : undefined
  }
  return Object.entries(all).map(([producerId, fields]) => {
    const stats = { producerId, reportedAt: Number(fields.reportedAt ?? 0) || 0 } as ProducerStats
    for (const name of COUNTERS) stats[name] = Number(fields[name] ?? 0) || 0
    stats.latencyP50Ms = ms(fields.latencyP50Ms)
    stats.latencyP99Ms = ms(fields.latencyP99Ms)
    return stats
  })
}
