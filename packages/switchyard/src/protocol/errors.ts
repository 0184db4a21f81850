/**
 * Every failure Switchyard reports, by stable string code. Codes are never reused or renamed;
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
] as const

/** A stable error code; match on it instead of on messages. */
export type ErrorCode = (typeof ERROR_CODES)[number]

/** Extra facts an error carries, such as the remote error of a failed handler. */
export interface SwitchyardErrorDetails {
  cause?: unknown
  /** For `HANDLER_ERROR`: the `name` of the error the handler threw. */
  remoteName?: string
  /** For `HANDLER_ERROR`: the worker that ran the handler. */
  workerId?: string
  /** For `HANDLER_ERROR`: whether the handler marked the failure as retryable. */
  isRetryable?: boolean
  /** The job the error is about, when there is one. */
  jobId?: string
}

/** The one error class of Switchyard: callers match on `code`. */
export class SwitchyardError extends Error {
  override readonly name = 'SwitchyardError'
  readonly code: ErrorCode
  readonly remoteName: string | undefined
  readonly workerId: string | undefined
  readonly isRetryable: boolean
  readonly jobId: string | undefined

  constructor(code: ErrorCode, message: string, details: SwitchyardErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause })
    this.code = code
    this.remoteName = details.remoteName
    this.workerId = details.workerId
    this.isRetryable = details.isRetryable ?? false
    this.jobId = details.jobId
  }
}

/** True when `err` is a SwitchyardError, optionally with the given code. */
export function isSwitchyardError(err: unknown, code?: ErrorCode): err is SwitchyardError {
  return err instanceof SwitchyardError && (code === undefined || err.code === code)
}

/** Shorthand for the most common failure: an option or argument out of its allowed range. */
export function invalidArgument(message: string): SwitchyardError {
  return new SwitchyardError('INVALID_ARGUMENT', message)
}
