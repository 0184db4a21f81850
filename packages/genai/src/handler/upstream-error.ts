/** HTTP codes of the model API worth another try elsewhere or later. */
export const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/**
 * A failed call to the model API. Hedgeyard's worker passes `retryable` on to the caller
 * (`err.isRetryable` of its `HANDLER_ERROR`); `retryAfterMs` is how long the API asked to wait.
 */
export class UpstreamError extends Error {
  override readonly name = 'UpstreamError'
  /** The HTTP code, or undefined when the API could not be reached. */
  readonly status: number | undefined
  readonly retryable: boolean
  /** From the error's `google.rpc.RetryInfo`, else from the `Retry-After` header, when either is given. */
  readonly retryAfterMs: number | undefined

  constructor(
    message: string,
    details: { status?: number; retryable: boolean; retryAfterMs?: number; cause?: unknown },
  ) {
    super(message, { cause: details.cause })
    this.status = details.status
    this.retryable = details.retryable
    this.retryAfterMs = details.retryAfterMs
  }
}

interface GoogleErrorFields {
  code?: unknown
  message?: unknown
  status?: unknown
  details?: unknown
}

/**
 * Classifies what the SDK threw. An `ApiError` (the SDK's error for an HTTP failure, whose
 * message holds the Google error body) becomes an {@link UpstreamError} with its code; a network
 * failure (fetch's `TypeError` with a cause) a retryable one without code. Anything else, an
 * abort included, comes back unchanged.
 * @param retryAfterHeader the `Retry-After` header of the failed response, when there was one
 */
export function toUpstreamError(err: unknown, retryAfterHeader: string | null, nowMs = Date.now()): unknown {
  if (!(err instanceof Error)) return err
  const status = (err as { status?: unknown }).status
  if (err.name === 'ApiError' && typeof status === 'number') {
    const google = googleErrorIn(err.message)
    // RetryInfo is precise to the millisecond; Retry-After, whole seconds, is the fallback.
    const delayMs = retryInfoMs(google?.details) ?? retryAfterMs(retryAfterHeader, nowMs)
    const name = typeof google?.status === 'string' ? ` ${google.status}` : ''
    const text = typeof google?.message === 'string' ? google.message : err.message
    return new UpstreamError(`the model API answered ${status}${name}: ${text}`, {
      status,
      retryable: RETRYABLE_STATUSES.has(status),
      ...(delayMs === undefined ? {} : { retryAfterMs: delayMs }),
      cause: err,
    })
  }
  if (err instanceof TypeError && err.cause instanceof Error) {
    const code = (err.cause as { code?: unknown }).code
    return new UpstreamError(
      `the model API could not be reached: ${typeof code === 'string' ? code : err.cause.message}`,
      { retryable: true, cause: err },
    )
  }
  return err
}

/** The `error` object of the Google error body inside an SDK error message (which may prefix it). */
function googleErrorIn(message: string): GoogleErrorFields | undefined {
  const start = message.indexOf('{')
  if (start < 0) return undefined
  try {
    const body: unknown = JSON.parse(message.slice(start))
    const error = (body as { error?: unknown } | null)?.error
    return typeof error === 'object' && error !== null ? (error as GoogleErrorFields) : undefined
  } catch {
    return undefined
  }
}

/** The delay of a `google.rpc.RetryInfo` detail (`"retryDelay": "1.5s"`), in ms. */
export function retryInfoMs(details: unknown): number | undefined {
  if (!Array.isArray(details)) return undefined
  for (const detail of details) {
    const d = detail as { '@type'?: unknown; retryDelay?: unknown } | null
    if (d?.['@type'] !== 'type.googleapis.com/google.rpc.RetryInfo' || typeof d.retryDelay !== 'string')
      continue
    // A google.protobuf.Duration in JSON: decimal seconds, then 's'.
    const seconds = d.retryDelay.endsWith('s') ? Number(d.retryDelay.slice(0, -1)) : Number.NaN
    if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000)
  }
  return undefined
}

/** A `Retry-After` header (delay-seconds, or an HTTP date), in ms from `nowMs`. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null || header.trim() === '') return undefined
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return seconds >= 0 ? Math.round(seconds * 1000) : undefined
  const at = Date.parse(header)
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs)
}
