import { ApiError } from '@google/genai'
import { describe, expect, it } from 'vitest'
import { retryAfterMs, retryInfoMs, toUpstreamError, UpstreamError } from './upstream-error.js'

const body = (code: number, status: string, details?: unknown[]) =>
  JSON.stringify({ error: { code, message: 'upstream says no', status, ...(details ? { details } : {}) } })
const retryInfo = (retryDelay: string) => ({
  '@type': 'type.googleapis.com/google.rpc.RetryInfo',
  retryDelay,
})

describe('toUpstreamError', () => {
  it('makes a 429 retryable, with the RetryInfo delay before the Retry-After one', () => {
    const err = toUpstreamError(
      new ApiError({ message: body(429, 'RESOURCE_EXHAUSTED', [retryInfo('1.5s')]), status: 429 }),
      '3',
    )
    expect(err).toBeInstanceOf(UpstreamError)
    expect(err).toMatchObject({ status: 429, retryable: true, retryAfterMs: 1500 })
    expect((err as Error).message).toBe('the model API answered 429 RESOURCE_EXHAUSTED: upstream says no')
    const headerOnly = toUpstreamError(
      new ApiError({ message: body(429, 'RESOURCE_EXHAUSTED'), status: 429 }),
      '2',
    )
    expect(headerOnly).toMatchObject({ retryAfterMs: 2000 })
  })

  it('reads an error that arrived inside a stream, whose message prefixes the body', () => {
    const message = `got status: UNAVAILABLE. ${body(503, 'UNAVAILABLE')}`
    expect(toUpstreamError(new ApiError({ message, status: 503 }), null)).toMatchObject({
      status: 503,
      retryable: true,
      retryAfterMs: undefined,
    })
  })

  it('makes other 4xx final, naming the code', () => {
    const err = toUpstreamError(new ApiError({ message: body(403, 'PERMISSION_DENIED'), status: 403 }), null)
    expect(err).toMatchObject({ status: 403, retryable: false })
    expect((err as Error).message).toContain('403 PERMISSION_DENIED')
  })

  it('makes an unreachable API retryable, and leaves anything else alone', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })
    const network = toUpstreamError(new TypeError('fetch failed', { cause: refused }), null)
    expect(network).toMatchObject({ status: undefined, retryable: true })
    expect((network as Error).message).toBe('the model API could not be reached: ECONNREFUSED')
    const abort = new DOMException('This operation was aborted', 'AbortError')
    expect(toUpstreamError(abort, null)).toBe(abort)
  })
})

describe('retry delays', () => {
  it('reads RetryInfo durations and Retry-After seconds or dates', () => {
    expect(retryInfoMs([{ '@type': 'other' }, retryInfo('0.25s')])).toBe(250)
    expect(retryInfoMs([retryInfo('soon')])).toBeUndefined()
    expect(retryAfterMs('7', 0)).toBe(7000)
    expect(retryAfterMs('Thu, 01 Jan 1970 00:00:05 GMT', 1000)).toBe(4000)
    expect(retryAfterMs('tomorrow', 0)).toBeUndefined()
    expect(retryAfterMs(null, 0)).toBeUndefined()
  })
})
