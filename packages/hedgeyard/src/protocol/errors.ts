/**
 * Every failure Hedgeyard reports, by stable string code. Codes are never reused or renamed;
 * `docs/errors.md` documents each one and a test keeps the two in sync.
 */
export const ERROR_CODES = [
  'SATURATED',
  'NO_WORKERS',
  'TIMEOUT',
  'ABORTED',
  'HANDLER_ERROR',
  'PAYLOAD_TOO_LARGE',
  'RESULT_TOO_LARGE',
  'INVALID_ARGUMENT',
  'CLOSED',
  'REDIS_UNAVAILABLE',
  'PROTOCOL_ERROR',
  'DEAD_LETTERED',
  'REDIS_AUTH',
  'REDIS_TLS',
  'REDIS_NOPERM',
  'REDIS_OOM',
  'REDIS_READONLY',
  'REDIS_BUSY',
  'REDIS_WRONGTYPE',
  'REDIS_CLUSTER',
  'CANCELLED',
  'STREAM_OVERFLOW',
  'WORKER_LOST',
  'NOT_FOUND',
  'RATE_LIMITED',
  'THROTTLED',
] as const

/** A stable error code; match on it instead of on messages. */
export type ErrorCode = (typeof ERROR_CODES)[number]

/** Extra facts an error carries, such as the remote error of a failed handler. */
export interface HedgeyardErrorDetails {
  cause?: unknown
  /** For `HANDLER_ERROR`: the `name` of the error the handler threw. */
  remoteName?: string
  /** For `HANDLER_ERROR`: the `status` of the error the handler threw, when it was an HTTP code. */
  remoteStatus?: number
  /** For `HANDLER_ERROR`: the worker that ran the handler. */
  workerId?: string
  /** For `HANDLER_ERROR`: whether the handler marked the failure as retryable. */
  isRetryable?: boolean
  /** The job the error is about, when there is one. */
  jobId?: string
  /** For an error Redis replied with: the reply's first word, such as `OOM` or `NOPERM`. */
  redisPrefix?: string
  /** For `RATE_LIMITED`: how long to wait before the pool's quota lets the request go. */
  retryAfterMs?: number
  /** A retry the submit had attempts left for was refused by the hedging budget. */
  isRetryDenied?: boolean
  /** Each copy's failure, in copy order, when every copy of a hedged or retried job failed. */
  errors?: readonly HedgeyardError[]
}

/** The one error class of Hedgeyard: callers match on `code`. */
export class HedgeyardError extends Error {
  override readonly name = 'HedgeyardError'
  readonly code: ErrorCode
  readonly remoteName: string | undefined
  /**
   * For `HANDLER_ERROR`: the `status` of the error the handler threw, when it was an HTTP code
   * (an integer from 100 to 599), such as the 400 of a model API that refused the request.
   */
  readonly remoteStatus: number | undefined
  readonly workerId: string | undefined
  readonly isRetryable: boolean
  readonly jobId: string | undefined
  /** The prefix of the Redis error reply behind this error (`OOM`, `NOPERM`, `ERR`...), if any. */
  readonly redisPrefix: string | undefined
  /** For `RATE_LIMITED`: how long to wait before the pool's quota lets the request go. */
  readonly retryAfterMs: number | undefined
  /** A retry the submit had attempts left for was refused by the hedging budget. */
  readonly isRetryDenied: boolean
  /**
   * When every copy of a hedged, retried or streamed job failed: each copy's failure, in copy
   * order (as `AggregateError#errors` of `@hedgeyard/race`'s `hedge`); the error itself is the
   * last one's code and message. Undefined otherwise.
   */
  readonly errors: readonly HedgeyardError[] | undefined

  constructor(code: ErrorCode, message: string, details: HedgeyardErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = code
    this.remoteName = details.remoteName
    this.remoteStatus = details.remoteStatus
    this.workerId = details.workerId
    this.isRetryable = details.isRetryable ?? false
    this.jobId = details.jobId
    this.redisPrefix = details.redisPrefix
    this.retryAfterMs = details.retryAfterMs
    this.isRetryDenied = details.isRetryDenied ?? false
    this.errors = details.errors
  }
}

/** True when `err` is a HedgeyardError, optionally with the given code. */
export function isHedgeyardError(err: unknown, code?: ErrorCode): err is HedgeyardError {
  return err instanceof HedgeyardError && (code === undefined || err.code === code)
}

/** Shorthand for the most common failure: an option or argument out of its allowed range. */
export function invalidArgument(message: string): HedgeyardError {
  return new HedgeyardError('INVALID_ARGUMENT', message)
}
