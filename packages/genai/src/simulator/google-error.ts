/** The canonical status name Google APIs give each HTTP code in their error bodies. */
const STATUS_NAMES: Readonly<Record<number, string>> = Object.freeze({
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  409: 'ABORTED',
  413: 'INVALID_ARGUMENT',
  429: 'RESOURCE_EXHAUSTED',
  499: 'CANCELLED',
  500: 'INTERNAL',
  501: 'NOT_IMPLEMENTED',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
})

/** The message the simulator gives each code it makes up itself (outages, injected failures). */
const DEFAULT_MESSAGES: Readonly<Record<number, string>> = Object.freeze({
  400: 'Request contains an invalid argument.',
  403: 'The caller does not have permission.',
  404: 'Requested entity was not found.',
  429: 'Resource has been exhausted (e.g. check quota).',
  500: 'An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting',
  503: 'The model is overloaded. Please try again later.',
  504: 'The request timed out. Please try again.',
})

/** A `google.rpc` error detail. */
export type ErrorDetail = { '@type': string } & Record<string, unknown>

/** The body of a Google API error: `{"error":{"code","message","status","details"?}}`. */
export interface GoogleErrorBody {
  error: { code: number; message: string; status: string; details?: ErrorDetail[] }
}

/** The status name of an HTTP code (`UNKNOWN` for one Google does not name). */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? (code >= 500 ? 'UNKNOWN' : 'FAILED_PRECONDITION')
}

/** A Google error body; without a message, the one the API gives for that code. */
export function googleError(code: number, message?: string, details?: ErrorDetail[]): GoogleErrorBody {
  return {
    error: {
      code,
      message: message ?? DEFAULT_MESSAGES[code] ?? `The service answered ${code}.`,
      status: statusName(code),
      ...(details ? { details } : {}),
    },
  }
}

/** A `google.rpc.RetryInfo` detail: how long to wait before retrying. */
export function retryInfo(delayMs: number): ErrorDetail {
  return { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: formatDuration(delayMs) }
}

/** A duration in the JSON form of `google.protobuf.Duration`: seconds with up to 3 decimals, then `s`. */
export function formatDuration(ms: number): string {
  const seconds = (Math.max(0, Math.ceil(ms)) / 1000).toFixed(3).replace(/\.?0+$/, '')
  return `${seconds === '' ? '0' : seconds}s`
}
