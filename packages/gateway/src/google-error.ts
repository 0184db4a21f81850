import { isHedgeyardError } from 'hedgeyard'

/** An error as Google's APIs answer it, which the Gemini SDK reads. */
export interface GoogleErrorBody {
  error: { code: number; message: string; status: string }
}

/** What a failure becomes on the wire: the HTTP code, Google's status name, the message, a Retry-After. */
export interface HttpFailure {
  httpCode: number
  status: string
  message: string
  /** Seconds, for the Retry-After header of a 429 or 503. */
  retryAfterS?: number
}

const STATUS_OF_HTTP: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'INVALID_ARGUMENT',
  413: 'INVALID_ARGUMENT',
  415: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
}

/** The model's answers that are about the client's request, passed on as they are. */
const CLIENT_STATUSES: ReadonlySet<number> = new Set([400, 404, 413])

/** Google's status name for an HTTP code. */
export function statusOf(httpCode: number): string {
  return STATUS_OF_HTTP[httpCode] ?? (httpCode >= 500 ? 'INTERNAL' : 'INVALID_ARGUMENT')
}

/** The body of an error answer. */
export function googleError(f: HttpFailure): GoogleErrorBody {
  return { error: { code: f.httpCode, message: f.message, status: f.status } }
}

/** A failure with the status its code implies. */
export function failure(httpCode: number, message: string, retryAfterS?: number): HttpFailure {
  return {
    httpCode,
    status: statusOf(httpCode),
    message,
    ...(retryAfterS === undefined ? {} : { retryAfterS }),
  }
}

/**
 * What a Hedgeyard error means to an HTTP client: a full pool or a quota is 429 with Retry-After,
 * no worker (or Redis away, or an upstream outage shed here) is 503, a deadline 504, a bad request
 * 400, a job cancelled or abandoned by its client 499. Anything else is 500 with its message.
 */
export function httpFailureOf(err: unknown): HttpFailure {
  if (!isHedgeyardError(err)) {
    return failure(500, err instanceof Error ? err.message : 'internal error')
  }
  const seconds = (ms: number | undefined) => Math.max(1, Math.ceil((ms ?? 1_000) / 1_000))
  switch (err.code) {
    case 'SATURATED':
      return failure(429, err.message, 1)
    case 'RATE_LIMITED':
      return failure(429, err.message, seconds(err.retryAfterMs))
    case 'NO_WORKERS':
    case 'THROTTLED':
    case 'WORKER_LOST':
      return failure(503, err.message, 1)
    case 'TIMEOUT':
      return failure(504, err.message)
    case 'INVALID_ARGUMENT':
      return failure(400, err.message)
    case 'PAYLOAD_TOO_LARGE':
      return failure(413, err.message)
    case 'NOT_FOUND':
      return failure(404, err.message)
    case 'CANCELLED':
    case 'ABORTED':
      return failure(499, err.message)
    case 'HANDLER_ERROR':
      // The model refused the request as malformed, or named something that does not exist, or
      // found it too large: the client's to fix. (Its 401 or 403 is about the workers' own key.)
      if (err.remoteName === 'TypeError') return failure(400, err.message)
      if (err.remoteStatus !== undefined && CLIENT_STATUSES.has(err.remoteStatus)) {
        return failure(err.remoteStatus, err.message)
      }
      return err.isRetryable ? failure(503, err.message, 1) : failure(500, err.message)
    default:
      return err.code.startsWith('REDIS_') ? failure(503, err.message, 1) : failure(500, err.message)
  }
}
