import type { FastifyBaseLogger } from 'fastify'
import { HedgeyardError, type PoolRef } from 'hedgeyard'

/** Options of {@link dashboardRoutes}. */
export interface DashboardOptions {
  /** A Redis URL, or an ioredis client (the dashboard opens its own connections from it). */
  redis: PoolRef['redis']
  /** The pool it shows. */
  pool: string
  /** The pool's key prefix. @defaultValue 'hy' */
  prefix?: string
  /** Where the page is served: '' for the root, '/dashboard' under the gateway. @defaultValue '' */
  basePath?: string
  /** How often the pool is read while a page watches. @defaultValue 1000 */
  intervalMs?: number
  /** Where a failed read of the pool is logged. @defaultValue the app's logger */
  logger?: FastifyBaseLogger
}

/** Defaults of {@link DashboardOptions}. */
export const DASHBOARD_DEFAULTS = Object.freeze({
  prefix: 'hy',
  basePath: '',
  intervalMs: 1_000,
})

/** Options merged with the defaults and checked. */
export interface ResolvedOptions {
  ref: PoolRef
  basePath: string
  intervalMs: number
  logger: FastifyBaseLogger | undefined
}

function invalid(message: string): HedgeyardError {
  return new HedgeyardError('INVALID_ARGUMENT', message)
}

/** The names the library accepts for a pool or a prefix (checked here so that a mistake fails at start). */
function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9_.:-]{1,100}$/.test(value)) {
    throw invalid(
      `${field} must be 1-100 characters of letters, digits, '_', '.', ':' or '-' (got ${JSON.stringify(value)})`,
    )
  }
  return value
}

/**
 * Merges options with {@link DASHBOARD_DEFAULTS} and checks them once.
 * @throws HedgeyardError INVALID_ARGUMENT naming the option.
 */
export function resolveOptions(options: DashboardOptions): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw invalid('dashboard options must be an object { redis, pool, prefix?, basePath?, intervalMs? }')
  }
  const pool = checkName('pool', options.pool)
  const prefix = checkName('prefix', options.prefix ?? DASHBOARD_DEFAULTS.prefix)
  const basePath = options.basePath ?? DASHBOARD_DEFAULTS.basePath
  if (typeof basePath !== 'string' || !/^(\/[A-Za-z0-9_.-]+)*$/.test(basePath)) {
    throw invalid(
      `basePath must be '' or a path such as '/dashboard', without a trailing slash (got ${JSON.stringify(basePath)})`,
    )
  }
  const intervalMs = options.intervalMs ?? DASHBOARD_DEFAULTS.intervalMs
  if (!Number.isInteger(intervalMs) || intervalMs < 100 || intervalMs > 60_000) {
    throw invalid(`intervalMs must be a whole number of ms from 100 to 60000 (got ${intervalMs})`)
  }
  return {
    ref: { redis: options.redis, pool, prefix },
    basePath,
    intervalMs,
    logger: options.logger,
  }
}
