import { describe, expect, it } from 'vitest'
import {
  decodeEntry,
  decodeEnvelope,
  type Envelope,
  entryFieldList,
  envelopeError,
  isWireId,
} from './codec.js'
import { DEFAULT_MAX_ATTEMPTS, MAX_ATTEMPTS_LIMIT, MAX_ID_BYTES, MAX_SESSION_BYTES } from './wire.js'

const PLAIN = { id: 'job-1', payload: '{"n":1}', producer: 'p-1' }
const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'

/** An entry's fields from raw text by name (`job` laid out as the scripts write it). */
const entry = entryFieldList

/** Why decoding fails, or undefined when it does not. */
function invalid(fields: string[]): string | undefined {
  const decoded = decodeEntry('1-1', fields)
  return 'invalid' in decoded ? decoded.invalid : undefined
}

describe('decodeEntry', () => {
  it("gives a plain job's left-out fields their defaults", () => {
    expect(entry(PLAIN)).toEqual(['job', 'job-1 p-1 - 0', 'payload', '{"n":1}'])
    expect(decodeEntry('1700000000000-0', entry(PLAIN))).toEqual({
      entryId: '1700000000000-0',
      jobId: 'job-1',
      payload: '{"n":1}',
      producer: 'p-1',
      session: '',
      attempt: 1,
      copy: 1,
      maxAttempts: DEFAULT_MAX_ATTEMPTS,
      deadline: Number.POSITIVE_INFINITY,
      enqueued: 0,
      race: '',
      resultTtlMs: undefined,
      tenant: '',
      traceparent: undefined,
    })
    expect(
      decodeEntry('1-1', entry({ ...PLAIN, deadline: '1700000060000', enqueued: '1700000000000' })),
    ).toMatchObject({ deadline: 1_700_000_060_000, enqueued: 1_700_000_000_000, attempt: 1 })
  })

  it("reads every field a full entry carries, job's words in any order after the fourth, ignoring names it does not know", () => {
    const fields = [
      'session',
      'chat 9',
      'payload',
      '{"n":1}',
      'future-field',
      'ignored',
      'job',
      `job-1 p-1 1700000060000 1700000000000 trace=${TRACEPARENT} tenant=acme:eu future=x ttl=30000 race=h max=5 copy=2 attempt=3`,
    ]
    expect(decodeEntry('2-5', fields)).toMatchObject({
      jobId: 'job-1',
      producer: 'p-1',
      payload: '{"n":1}',
      session: 'chat 9',
      attempt: 3,
      copy: 2,
      maxAttempts: 5,
      deadline: 1_700_000_060_000,
      enqueued: 1_700_000_000_000,
      race: 'h',
      resultTtlMs: 30_000,
      tenant: 'acme:eu',
      traceparent: TRACEPARENT,
    })
    // Runs of spaces between the words are one gap.
    expect(decodeEntry('2-5', ['job', '  job-1   p-1 - 7  attempt=2 ', 'payload', '1'])).toMatchObject({
      jobId: 'job-1',
      producer: 'p-1',
      enqueued: 7,
      attempt: 2,
    })
  })

  it('takes the copy to be the attempt when the entry does not say', () => {
    expect(decodeEntry('1-1', entry({ ...PLAIN, attempt: '4' }))).toMatchObject({ attempt: 4, copy: 4 })
  })

  it('refuses an entry without job, or whose job is not four words and name=value words', () => {
    expect(invalid(['id', 'j', 'payload', '1', 'producer', 'p'])).toBe('job is missing')
    for (const job of ['', 'j p', 'j p 5', 'j p 5 0 attempt', 'j p 5 0 =2']) {
      expect(invalid(['job', job, 'payload', '1']), JSON.stringify(job)).toMatch(/^job is not /)
    }
  })

  it('refuses an entry without a valid id, producer or payload, naming the field', () => {
    expect(invalid(entry({ ...PLAIN, id: 'a{b}' }))).toMatch(/^id /)
    expect(invalid(entry({ ...PLAIN, id: 'x'.repeat(MAX_ID_BYTES + 1) }))).toMatch(/^id /)
    expect(invalid(entry({ ...PLAIN, id: 'x'.repeat(MAX_ID_BYTES + 1), attempt: '2' }))).toMatch(/^id /)
    expect(invalid(entry({ ...PLAIN, producer: '{p}' }))).toMatch(/^producer /)
    expect(invalid(entry({ ...PLAIN, producer: '{p}', attempt: '2' }))).toMatch(/^producer /)
    expect(invalid(entry({ id: 'j', producer: 'p' }))).toBe('payload is missing')
  })

  it('refuses numbers that are not whole decimal numbers, or out of range', () => {
    for (const bad of ['', '0', '-1', '1.5', '1e3', '+2', '0x10', '1234567890123456']) {
      expect(invalid(entry({ ...PLAIN, attempt: bad })), `attempt '${bad}'`).toMatch(/^attempt /)
    }
    expect(invalid(entry({ ...PLAIN, copy: '0' }))).toMatch(/^copy /)
    expect(invalid(entry({ ...PLAIN, max: 'three' }))).toMatch(/^max /)
    // A plain job's deadline and enqueued are checked on its short path too.
    expect(invalid(entry({ ...PLAIN, deadline: 'soon' }))).toMatch(/^deadline /)
    expect(invalid(entry({ ...PLAIN, deadline: 'soon', attempt: '2' }))).toMatch(/^deadline /)
    expect(invalid(entry({ ...PLAIN, enqueued: '-5' }))).toMatch(/^enqueued /)
    expect(invalid(entry({ ...PLAIN, enqueued: '-5', attempt: '2' }))).toMatch(/^enqueued /)
    expect(invalid(entry({ ...PLAIN, ttl: '0' }))).toMatch(/^ttl /)
    expect(invalid(entry({ ...PLAIN, max: String(MAX_ATTEMPTS_LIMIT + 1) }))).toMatch(/above/)
    expect(invalid(entry({ ...PLAIN, attempt: String(MAX_ATTEMPTS_LIMIT) }))).toBeUndefined()
    // A deadline of 0 is a number (long past), not a missing one.
    expect(decodeEntry('1-1', entry({ ...PLAIN, deadline: '0' }))).toMatchObject({ deadline: 0 })
  })

  it('refuses an unknown race mode, a tenant that is not an id, and a session over its limit', () => {
    expect(invalid(entry({ ...PLAIN, race: 'x' }))).toMatch(/^race /)
    expect(invalid(entry({ ...PLAIN, tenant: 'a{b}' }))).toMatch(/^tenant /)
    expect(invalid(entry({ ...PLAIN, session: 's'.repeat(MAX_SESSION_BYTES + 1) }))).toMatch(/^session /)
    // Counted in UTF-8 bytes: 342 three-byte characters are over 1,024 bytes.
    expect(invalid(entry({ ...PLAIN, session: '€'.repeat(342) }))).toMatch(/^session /)
    expect(invalid(entry({ ...PLAIN, session: '€'.repeat(341) }))).toBeUndefined()
  })

  it('runs a job whose trace context is malformed, without a parent span', () => {
    for (const trace of ['nonsense', `${TRACEPARENT}x`, TRACEPARENT.toUpperCase(), '']) {
      expect(decodeEntry('1-1', entry({ ...PLAIN, trace }))).toMatchObject({ traceparent: undefined })
    }
  })
})

describe('isWireId', () => {
  it('takes letters, digits and _ . : - up to the id limit', () => {
    expect(isWireId('Az09_.:-')).toBe(true)
    expect(isWireId('x'.repeat(MAX_ID_BYTES))).toBe(true)
    for (const bad of ['', 'x'.repeat(MAX_ID_BYTES + 1), 'a b', 'a{b}', 'é', 'a/b', 'a\nb']) {
      expect(isWireId(bad), JSON.stringify(bad)).toBe(false)
    }
  })
})

describe('decodeEnvelope', () => {
  it('reads a success and a failure as the worker wrote them', () => {
    expect(decodeEnvelope('{"ok":true,"value":{"n":1},"workerId":"w-1","copy":2}')).toEqual({
      ok: true,
      value: { n: 1 },
      workerId: 'w-1',
      copy: 2,
    })
    const failed = decodeEnvelope(
      '{"ok":false,"workerId":"w-1","error":{"code":"HANDLER_ERROR","name":"RangeError","message":"too big"}}',
    )
    expect(failed).toMatchObject({ ok: false, error: { code: 'HANDLER_ERROR', name: 'RangeError' } })
  })

  it('turns anything that is not an envelope into a PROTOCOL_ERROR failure, never a throw', () => {
    for (const text of [
      '',
      'not json',
      'null',
      '"ok"',
      '42',
      '[]',
      '{}',
      '{"ok":"true"}',
      '{"ok":false}',
      '{"ok":false,"error":"boom"}',
      '{"ok":false,"error":{"name":"E","message":"no code"}}',
      '{"ok":false,"error":null,"workerId":"w"}',
    ]) {
      const env = decodeEnvelope(text)
      expect(env, text).toMatchObject({ ok: false, error: { code: 'PROTOCOL_ERROR' } })
      // What the caller gets from it is an error, not a TypeError.
      expect(envelopeError('job-1', env as Extract<Envelope, { ok: false }>).code).toBe('PROTOCOL_ERROR')
    }
  })

  it('drops a workerId, copy or cost of the wrong type rather than passing it on', () => {
    const env = decodeEnvelope('{"ok":true,"value":1,"workerId":7,"copy":"2","cost":"9"}')
    expect(env).toEqual({ ok: true, value: 1, workerId: '' })
  })

  it("passes a handler error's HTTP status on, and drops one that is not an HTTP code", () => {
    const text = (status: unknown) =>
      JSON.stringify({ ok: false, workerId: 'w', error: { code: 'E', name: 'Error', message: 'm', status } })
    const statusOf = (status: unknown) => {
      const env = decodeEnvelope(text(status)) as Extract<Envelope, { ok: false }>
      return envelopeError('job-1', env).remoteStatus
    }
    expect(statusOf(400)).toBe(400)
    for (const bad of [99, 600, 400.5, '400', null, true]) expect(statusOf(bad)).toBeUndefined()
  })
})

describe('envelopeError', () => {
  const failed = (error: object): Extract<Envelope, { ok: false }> =>
    ({ ok: false, workerId: 'w-1', error }) as Extract<Envelope, { ok: false }>

  it("reports a handler's error as HANDLER_ERROR with its name, and the library's own codes as they are", () => {
    const err = envelopeError('job-1', failed({ code: 'X', name: 'RangeError', message: 'too big' }))
    expect(err).toMatchObject({ code: 'HANDLER_ERROR', message: 'RangeError: too big', jobId: 'job-1' })
    expect(err.workerId).toBe('w-1')
    const timeout = envelopeError(
      'job-1',
      failed({ code: 'TIMEOUT', name: 'HedgeyardError', message: 'late' }),
    )
    expect(timeout).toMatchObject({ code: 'TIMEOUT', message: 'late' })
  })

  it('makes an upstream rate limit RATE_LIMITED, retryable, with the delay rounded up', () => {
    const err = envelopeError(
      'job-1',
      failed({ code: 'HANDLER_ERROR', name: 'Error', message: '429', retryAfterMs: 1_200.2 }),
    )
    expect(err).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 1_201, isRetryable: true })
    const ignored = envelopeError(
      'job-1',
      failed({ code: 'E', name: 'Error', message: 'm', retryAfterMs: -5 }),
    )
    expect(ignored).toMatchObject({ code: 'HANDLER_ERROR', isRetryable: false })
    expect(ignored.retryAfterMs).toBeUndefined()
  })
})
