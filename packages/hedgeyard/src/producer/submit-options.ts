import { invalidArgument } from '../protocol/errors.js'
import {
  checkInt,
  checkKnownOptions,
  checkLimitClass,
  checkLimitKey,
  checkMs,
  checkOneOf,
  checkSession,
  describe,
} from '../protocol/validate.js'
import { DEFAULT_LIMIT_CLASS, MAX_JOB_COST } from '../protocol/wire.js'

/** Hedging of one submit: staggered copies to other workers, the first success wins. Only for idempotent requests. */
export interface HedgeOptions {
  /** Wait this long for a result before sending the next copy; 'auto' uses a recent high percentile of this producer's latency. */
  delayMs?: number | 'auto'
  /** Copies in all, the first included (2 to 5). @defaultValue 2 */
  maxAttempts?: number
  /** 'race' sends copies after the delay; 'tied' queues two copies at once and the first to start claims the job. @defaultValue 'race' */
  mode?: 'race' | 'tied'
}

/** Retries of one submit: a copy that fails with a retryable error is sent again to another worker. */
export interface RetryOptions {
  /**
   * Copies in all, the first included (1 to 5), at most: each retry spends the dispatcher's hedging
   * budget, and one it refuses is not sent (the error then has `isRetryDenied` set). @defaultValue 3
   */
  maxAttempts?: number
  /** Wait before each retry. @defaultValue 100 */
  backoffMs?: number
}

/** Options of one {@link Dispatcher.submit}. */
export interface SubmitOptions {
  /** Requests of one session go to the same worker while its binding lives. */
  session?: string
  /** Time limit of this request; past it the caller gets TIMEOUT and the job is not started. */
  timeoutMs?: number
  /** Aborting it makes the submit fail with ABORTED. One signal may serve any number of submits and streams: it carries one listener for them all. */
  signal?: AbortSignal
  /**
   * When no worker has room: fail at once with SATURATED, or wait in this dispatcher's queue of
   * requests waiting for room (sent again, oldest first, as its jobs end) until the timeout.
   * @defaultValue 'reject'
   */
  onSaturated?: 'reject' | 'wait'
  /**
   * How many workers may be lost while holding this job (killed, or silent past their lease)
   * before it goes to the dead letters and the caller gets DEAD_LETTERED. @defaultValue 3
   */
  maxAttempts?: number
  /** Hedge this request (idempotent requests only). */
  hedge?: HedgeOptions
  /** Retry this request on another worker when its handler fails with a retryable error. */
  retry?: RetryOptions
  /** Units this request takes from the pool's cost budget (tokens, say), when it has one. @defaultValue 1 */
  cost?: number
  /**
   * Over the pool's quota: wait until the slot the quota gives (up to the timeout; the quota is
   * checked again then), or fail at once with RATE_LIMITED and `retryAfterMs`. @defaultValue 'wait'
   */
  onRateLimited?: 'wait' | 'reject'
  /**
   * While Redis cannot be reached (restarting, failing over): wait for it to answer again, up to the
   * timeout, and then dispatch; or fail at once with REDIS_UNAVAILABLE. A job whose dispatch reply
   * was lost with the connection is looked up by its id before it is sent again: never queued
   * twice. One still waiting at its deadline fails with REDIS_UNAVAILABLE. @defaultValue the
   * dispatcher's onRedisUnavailable, 'wait'
   */
  onRedisUnavailable?: 'wait' | 'reject'
  /**
   * The tenant this request counts against (an API key's id, a user): its class's limits apply to
   * it, on top of the pool's. Letters, digits and `_ . : -`, at most 128 bytes.
   */
  limitKey?: string
  /** Which class of tenant limits applies (set with `setPoolLimits(ref, limits, { limitClass })`); with `limitKey` only. @defaultValue 'default' */
  limitClass?: string
}

/** Submit options after validation, with the dispatcher's defaults filled in. */
export interface CheckedSubmit {
  session: string
  timeoutMs: number
  onSaturated: 'reject' | 'wait'
  maxAttempts: number
  hedge: { delayMs: number | 'auto'; maxAttempts: number; mode: 'race' | 'tied' } | undefined
  retry: { maxAttempts: number; backoffMs: number } | undefined
  cost: number
  onRateLimited: 'wait' | 'reject'
  onRedisUnavailable: 'wait' | 'reject'
  /** The tenant, or undefined for none. */
  limitKey: string | undefined
  limitClass: string
}

const KNOWN = [
  'session',
  'timeoutMs',
  'signal',
  'onSaturated',
  'maxAttempts',
  'hedge',
  'retry',
  'cost',
  'onRateLimited',
  'onRedisUnavailable',
  'limitKey',
  'limitClass',
]
/** The values of onRedisUnavailable. */
export const REDIS_UNAVAILABLE_CHOICES = ['wait', 'reject'] as const

/** The submit options a dispatcher gives a submit that does not set them. */
export interface SubmitDefaults {
  timeoutMs: number
  maxAttempts: number
  hedgeDelayMs: number | 'auto'
  onRedisUnavailable: 'wait' | 'reject'
}

/** At most this many copies of one request, as in "The Tail at Scale": more only adds load. */
export const MAX_COPIES = 5

/**
 * Validates the options of one submit.
 * @throws HedgeyardError INVALID_ARGUMENT naming the option and what is allowed.
 */
export function checkSubmitOptions(options: SubmitOptions, defaults: SubmitDefaults): CheckedSubmit {
  checkKnownOptions('submit', options, KNOWN)
  const hedge = options.hedge === undefined ? undefined : checkHedge(options.hedge, defaults.hedgeDelayMs)
  const retry = options.retry === undefined ? undefined : checkRetry(options.retry)
  const limitKey = options.limitKey === undefined ? undefined : checkLimitKey('limitKey', options.limitKey)
  if (options.limitClass !== undefined && limitKey === undefined) {
    throw invalidArgument('limitClass applies to a tenant: give limitKey too')
  }
  return {
    session: options.session === undefined ? '' : checkSession(options.session),
    timeoutMs:
      options.timeoutMs === undefined ? defaults.timeoutMs : checkMs('timeoutMs', options.timeoutMs, 1),
    onSaturated:
      options.onSaturated === undefined
        ? 'reject'
        : checkOneOf('onSaturated', options.onSaturated, ['reject', 'wait']),
    maxAttempts:
      options.maxAttempts === undefined
        ? defaults.maxAttempts
        : checkInt('maxAttempts', options.maxAttempts, 1, 100),
    hedge,
    retry,
    cost: options.cost === undefined ? 1 : checkInt('cost', options.cost, 1, MAX_JOB_COST),
    onRateLimited:
      options.onRateLimited === undefined
        ? 'wait'
        : checkOneOf('onRateLimited', options.onRateLimited, ['wait', 'reject']),
    onRedisUnavailable:
      options.onRedisUnavailable === undefined
        ? defaults.onRedisUnavailable
        : checkOneOf('onRedisUnavailable', options.onRedisUnavailable, REDIS_UNAVAILABLE_CHOICES),
    limitKey,
    limitClass:
      options.limitClass === undefined
        ? DEFAULT_LIMIT_CLASS
        : checkLimitClass('limitClass', options.limitClass),
  }
}

function checkHedge(hedge: HedgeOptions, defaultDelay: number | 'auto'): NonNullable<CheckedSubmit['hedge']> {
  if (typeof hedge !== 'object' || hedge === null)
    throw invalidArgument(`hedge must be an object (got ${describe(hedge)})`)
  checkKnownOptions('hedge', hedge, ['delayMs', 'maxAttempts', 'mode'])
  const delayMs = hedge.delayMs ?? defaultDelay
  if (delayMs !== 'auto') checkMs('hedge.delayMs', delayMs, 0)
  return {
    delayMs,
    maxAttempts:
      hedge.maxAttempts === undefined ? 2 : checkInt('hedge.maxAttempts', hedge.maxAttempts, 2, MAX_COPIES),
    mode: hedge.mode === undefined ? 'race' : checkOneOf('hedge.mode', hedge.mode, ['race', 'tied']),
  }
}

function checkRetry(retry: RetryOptions): NonNullable<CheckedSubmit['retry']> {
  if (typeof retry !== 'object' || retry === null)
    throw invalidArgument(`retry must be an object (got ${describe(retry)})`)
  checkKnownOptions('retry', retry, ['maxAttempts', 'backoffMs'])
  return {
    maxAttempts:
      retry.maxAttempts === undefined ? 3 : checkInt('retry.maxAttempts', retry.maxAttempts, 1, MAX_COPIES),
    backoffMs: retry.backoffMs === undefined ? 100 : checkMs('retry.backoffMs', retry.backoffMs, 0),
  }
}
