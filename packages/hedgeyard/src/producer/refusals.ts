import { HedgeyardError } from '../protocol/errors.js'
import type { DispatchOutcome } from '../protocol/scripts/dispatch.js'

/** A dispatch outcome that queued nothing. */
export type Refusal = Exclude<DispatchOutcome, { status: 'queued' }>

/** Who a refused job belongs to, for the message. */
export interface RefusedJob {
  pool: string
  jobId: string
  limitKey?: string
  limitClass?: string
}

/**
 * The error a caller gets for a copy the dispatch script did not queue: SATURATED for a full pool
 * or a tenant at its cap, NO_WORKERS, RATE_LIMITED (with `retryAfterMs`) over the pool's or the
 * tenant's quota, PROTOCOL_ERROR when the tenant's class limits cannot be read.
 */
export function refusalError(outcome: Refusal, job: RefusedJob): HedgeyardError {
  const { pool, jobId } = job
  switch (outcome.status) {
    case 'SATURATED':
      return new HedgeyardError('SATURATED', `every worker of pool '${pool}' is at capacity`, { jobId })
    case 'NO_WORKERS':
      return new HedgeyardError('NO_WORKERS', `pool '${pool}' has no live worker`, { jobId })
    case 'TENANT_FULL':
      return new HedgeyardError(
        'SATURATED',
        `tenant '${job.limitKey}' has ${outcome.cap} jobs in flight, as many as its class '${job.limitClass}' allows`,
        { jobId },
      )
    case 'RATE_LIMITED': {
      const over = outcome.isTenant
        ? `tenant '${job.limitKey}' is over the quota of its class '${job.limitClass}'`
        : `pool '${pool}' is over its quota`
      return new HedgeyardError('RATE_LIMITED', `${over}; retry after ${outcome.retryAfterMs} ms`, {
        jobId,
        retryAfterMs: outcome.retryAfterMs,
        isRetryable: true,
      })
    }
    case 'BAD_LIMITS':
      return new HedgeyardError('PROTOCOL_ERROR', outcome.message, { jobId })
  }
}

/**
 * The error of a submit still waiting for Redis at its deadline (onRedisUnavailable 'wait'): its
 * job never reached a worker, or its dispatch ran but the reply was lost and Redis did not come
 * back in time to say so. REDIS_UNAVAILABLE rather than TIMEOUT: Redis, not the pool, was missing.
 */
export function redisWaitedOut(cause: unknown, jobId: string): HedgeyardError {
  return new HedgeyardError(
    'REDIS_UNAVAILABLE',
    "Redis could not be reached before the submit's deadline: the job was not queued (or its dispatch's reply was lost and Redis did not answer again in time)",
    { jobId, cause },
  )
}
