import { type ErrorCode, HedgeyardError } from './errors.js'
import {
  DEFAULT_MAX_ATTEMPTS,
  MAX_ATTEMPTS_LIMIT,
  MAX_ID_BYTES,
  MAX_NUMBER_DIGITS,
  MAX_SESSION_BYTES,
} from './wire.js'

/** Codes a worker or a script reports as they are; any other remote failure is HANDLER_ERROR. */
const PASSED_THROUGH = new Set<string>([
  'RESULT_TOO_LARGE',
  'PROTOCOL_ERROR',
  'DEAD_LETTERED',
  'TIMEOUT',
  'ABORTED',
  'CANCELLED',
  'STREAM_OVERFLOW',
  'WORKER_LOST',
])

/** A job as it travels in a worker stream (all fields are plain text, readable with XRANGE). */
export interface JobEntry {
  entryId: string
  jobId: string
  payload: string
  session: string
  attempt: number
  /** The copy this entry is (1 for the first; hedges and retries count up); rescue keeps it. */
  copy: number
  /** Attempts allowed before the job goes to the dead letters. */
  maxAttempts: number
  producer: string
  /** Ms of Redis time after which the job is not run; Infinity for none. */
  deadline: number
  enqueued: number
  /** '' for a plain job; 'h' when copies may race (hedge, retry); 't' for a tied copy; 's' streamed. */
  race: '' | 'h' | 't' | 's'
  /** How long the producer wants the result kept (ms), or undefined for the worker's default. */
  resultTtlMs: number | undefined
  /** The tenant (the submit's limitKey) whose jobs in flight this job counts among; '' for none. */
  tenant: string
  /** The W3C traceparent of the copy's span; undefined when there is none or it is not well formed. */
  traceparent: string | undefined
}

/** An entry that fails the checks: why, for the dead letters. */
export interface InvalidEntry {
  entryId: string
  invalid: string
}

/** The error part of a failed job's result envelope. */
export interface RemoteError {
  code: string
  name: string
  message: string
  retryable?: boolean
  /** The upstream asked to wait this long (a 429): the worker cools down, the caller gets RATE_LIMITED. */
  retryAfterMs?: number
  /** The `status` of the handler's error when it is an HTTP code (the upstream's 400, say). */
  status?: number
}

/** A result envelope as stored in `res:<jobId>` and published to the producer. */
export type Envelope =
  | { ok: true; value?: unknown; workerId: string; copy?: number; cost?: number }
  | { ok: false; error: RemoteError; workerId: string; copy?: number; cost?: number }

/**
 * Whether `s` can be an id that becomes part of a key or a results line, as lib/check.lua's isId:
 * 1 to MAX_ID_BYTES letters, digits and `_ . : -`.
 */
export function isWireId(s: string): boolean {
  if (s.length === 0 || s.length > MAX_ID_BYTES) return false
  // A loop over the characters, not a regular expression: this runs twice for every job.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    const isAlnum = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122)
    if (!isAlnum && c !== 95 && c !== 46 && c !== 58 && c !== 45) return false
  }
  return true
}

/**
 * A whole number written in decimal digits, at least `min`, as lib/check.lua's wholeNumber; a
 * string with the reason otherwise.
 */
function wholeNumber(text: string, name: string, min: number): number | string {
  if (text.length === 0 || text.length > MAX_NUMBER_DIGITS) return `${name} is not a whole number`
  let n = 0
  for (let i = 0; i < text.length; i++) {
    const d = text.charCodeAt(i) - 48
    if (d < 0 || d > 9) return `${name} is not a whole number`
    n = n * 10 + d
  }
  return n < min ? `${name} is below ${min}` : n
}

function invalidEntry(entryId: string, reason: string): InvalidEntry {
  return { entryId, invalid: reason }
}

/** The shape of a W3C traceparent (version 00). */
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

/** Why an entry's `job` field is not of its shape (lib/entry.lua's JOB_SHAPE). */
const JOB_SHAPE = "job is not '<id> <producer> <deadline> <enqueued>' followed by name=value words"

/** The raw text of an entry's fields by name, its `job` spread into its own (lib/entry.lua). */
export interface EntryFields {
  id?: string
  producer?: string
  deadline?: string
  enqueued?: string
  payload?: string
  session?: string
  attempt?: string
  copy?: string
  max?: string
  race?: string
  ttl?: string
  tenant?: string
  trace?: string
  /** Why `job` is missing or not of its shape; undefined when it is. */
  shape?: string
}

/**
 * The fields of an entry by name, as lib/entry.lua's entryFields reads them: `job` spread into
 * its words (a deadline of '-' left out), `payload` and `session` as they are; any other field,
 * and any name in `job` it does not know, is ignored. The words of `job` are the runs of
 * characters between spaces; a word past the fourth without '=' breaks its shape.
 */
export function entryFields(fields: readonly string[]): EntryFields {
  const f: EntryFields = {}
  let job: string | undefined
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]
    if (name === 'job') job = fields[i + 1]
    else if (name === 'payload') f.payload = fields[i + 1] as string
    else if (name === 'session') f.session = fields[i + 1] as string
  }
  if (job === undefined) {
    f.shape = 'job is missing'
    return f
  }
  let n = 0
  for (const word of job.split(' ')) {
    if (word === '') continue
    n++
    if (n === 1) f.id = word
    else if (n === 2) f.producer = word
    else if (n === 3) {
      if (word !== '-') f.deadline = word
    } else if (n === 4) f.enqueued = word
    else {
      const eq = word.indexOf('=')
      if (eq < 1) {
        f.shape = JOB_SHAPE
        return f
      }
      const value = word.slice(eq + 1)
      switch (word.slice(0, eq)) {
        case 'attempt':
          f.attempt = value
          break
        case 'copy':
          f.copy = value
          break
        case 'max':
          f.max = value
          break
        case 'race':
          f.race = value
          break
        case 'ttl':
          f.ttl = value
          break
        case 'tenant':
          f.tenant = value
          break
        case 'trace':
          f.trace = value
          break
      }
    }
  }
  if (n < 4) f.shape = JOB_SHAPE
  return f
}

/**
 * The field list of an entry written from raw text by name, laid out as lib/entry.lua's
 * writeEntry lays it out (a deadline left out is '-', an enqueued left out '0'), or with `job`
 * given whole. For the tests and benchmarks that write entries by hand: nothing is checked, so a
 * hostile value stays as it is given.
 */
export function entryFieldList(f: Omit<EntryFields, 'shape'> & { job?: string }): string[] {
  let job = f.job
  if (job === undefined) {
    const words = [f.id ?? '', f.producer ?? '', f.deadline ?? '-', f.enqueued ?? '0']
    for (const name of ['attempt', 'copy', 'max', 'race', 'ttl', 'tenant', 'trace'] as const) {
      const value = f[name]
      if (value !== undefined) words.push(`${name}=${value}`)
    }
    job = words.join(' ')
  }
  const list = ['job', job]
  if (f.payload !== undefined) list.push('payload', f.payload)
  if (f.session !== undefined) list.push('session', f.session)
  return list
}

/**
 * A plain job's entry (`job` of four words, and `payload`) with the checks decodeEntry makes of
 * it, without building its fields by name: this is every job's path. Undefined when `job` is not
 * four words between single spaces (decodeEntry then reads it the general way).
 */
function decodePlain(entryId: string, job: string, payload: string): JobEntry | InvalidEntry | undefined {
  const a = job.indexOf(' ')
  const b = job.indexOf(' ', a + 1)
  const c = job.indexOf(' ', b + 1)
  if (a < 1 || b < a + 2 || c < b + 2 || c === job.length - 1 || job.indexOf(' ', c + 1) !== -1)
    return undefined
  const id = job.slice(0, a)
  const producer = job.slice(a + 1, b)
  const deadline = job.slice(b + 1, c)
  if (!isWireId(id)) return invalidEntry(entryId, 'id is missing or not a valid id')
  if (!isWireId(producer)) return invalidEntry(entryId, 'producer is missing or not a valid id')
  const deadlineMs = deadline === '-' ? Number.POSITIVE_INFINITY : wholeNumber(deadline, 'deadline', 0)
  if (typeof deadlineMs === 'string') return invalidEntry(entryId, deadlineMs)
  const enqueuedMs = wholeNumber(job.slice(c + 1), 'enqueued', 0)
  if (typeof enqueuedMs === 'string') return invalidEntry(entryId, enqueuedMs)
  return {
    entryId,
    jobId: id,
    payload,
    session: '',
    attempt: 1,
    copy: 1,
    maxAttempts: DEFAULT_MAX_ATTEMPTS,
    producer,
    deadline: deadlineMs,
    enqueued: enqueuedMs,
    race: '',
    resultTtlMs: undefined,
    tenant: '',
    traceparent: undefined,
  }
}

/**
 * Decodes the flat field list of a stream entry with the checks and defaults of lib/entry.lua's
 * readEntry (the header there lists the fields): an entry that fails a check comes back as an
 * {@link InvalidEntry} with the reason, for the dead letters. Fields left out of `job` take their
 * defaults: a plain job's entry is `job '<id> <producer> <deadline> <enqueued>'` and its
 * `payload`, with no `session`, `attempt` (1), `copy` (= attempt), `race`, `max`, `ttl` (the
 * worker's resultTtlMs) or `tenant`.
 */
export function decodeEntry(entryId: string, fields: readonly string[]): JobEntry | InvalidEntry {
  if (fields.length === 4 && fields[0] === 'job' && fields[2] === 'payload') {
    const plain = decodePlain(entryId, fields[1] as string, fields[3] as string)
    if (plain !== undefined) return plain
  }
  const f = entryFields(fields)
  if (f.shape !== undefined) return invalidEntry(entryId, f.shape)
  const { id, producer, payload, attempt, copy, max, deadline, enqueued, ttl, tenant, trace } = f
  const session = f.session ?? ''
  const race = f.race ?? ''
  if (id === undefined || !isWireId(id)) return invalidEntry(entryId, 'id is missing or not a valid id')
  if (producer === undefined || !isWireId(producer)) {
    return invalidEntry(entryId, 'producer is missing or not a valid id')
  }
  if (payload === undefined) return invalidEntry(entryId, 'payload is missing')
  if (session.length * 3 > MAX_SESSION_BYTES && Buffer.byteLength(session) > MAX_SESSION_BYTES) {
    return invalidEntry(entryId, `session is longer than ${MAX_SESSION_BYTES} bytes`)
  }
  if (race !== '' && race !== 'h' && race !== 't' && race !== 's')
    return invalidEntry(entryId, "race is not '', 'h', 't' or 's'")
  if (tenant !== undefined && !isWireId(tenant)) return invalidEntry(entryId, 'tenant is not a valid id')
  // Left-out fields take their defaults unparsed: most entries leave most fields out.
  const attemptNo = attempt === undefined ? 1 : wholeNumber(attempt, 'attempt', 1)
  if (typeof attemptNo === 'string') return invalidEntry(entryId, attemptNo)
  const copyNo = copy === undefined ? attemptNo : wholeNumber(copy, 'copy', 1)
  if (typeof copyNo === 'string') return invalidEntry(entryId, copyNo)
  const maxNo = max === undefined ? DEFAULT_MAX_ATTEMPTS : wholeNumber(max, 'max', 1)
  if (typeof maxNo === 'string') return invalidEntry(entryId, maxNo)
  const deadlineMs = deadline === undefined ? Number.POSITIVE_INFINITY : wholeNumber(deadline, 'deadline', 0)
  if (typeof deadlineMs === 'string') return invalidEntry(entryId, deadlineMs)
  const enqueuedMs = enqueued === undefined ? 0 : wholeNumber(enqueued, 'enqueued', 0)
  if (typeof enqueuedMs === 'string') return invalidEntry(entryId, enqueuedMs)
  const ttlMs = ttl === undefined ? undefined : wholeNumber(ttl, 'ttl', 1)
  if (typeof ttlMs === 'string') return invalidEntry(entryId, ttlMs)
  if (attemptNo > MAX_ATTEMPTS_LIMIT || maxNo > MAX_ATTEMPTS_LIMIT || copyNo > MAX_ATTEMPTS_LIMIT) {
    return invalidEntry(entryId, `attempt, copy or max is above ${MAX_ATTEMPTS_LIMIT}`)
  }
  return {
    entryId,
    jobId: id,
    payload,
    session,
    attempt: attemptNo,
    copy: copyNo,
    maxAttempts: maxNo,
    producer,
    deadline: deadlineMs,
    enqueued: enqueuedMs,
    race,
    resultTtlMs: ttlMs,
    tenant: tenant ?? '',
    // A malformed trace context only loses the job its parent span: it never stops the job.
    traceparent: trace !== undefined && TRACEPARENT.test(trace) ? trace : undefined,
  }
}

/**
 * Parses a result envelope. Any client of Redis can write one, so the fields a producer reads are
 * checked: a workerId, copy or cost of another type is dropped, and a text that is not an
 * envelope (not JSON, no boolean `ok`, a failure without an error of string code, name and
 * message) becomes a PROTOCOL_ERROR failure.
 */
export function decodeEnvelope(text: string): Envelope {
  let env: Record<string, unknown> | undefined
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed === 'object' && parsed !== null) env = parsed as Record<string, unknown>
  } catch {
    // not JSON
  }
  if (env === undefined || typeof env.ok !== 'boolean' || (!env.ok && !isRemoteError(env.error))) {
    return {
      ok: false,
      workerId: '',
      error: { code: 'PROTOCOL_ERROR', name: 'HedgeyardError', message: 'malformed result envelope' },
    }
  }
  if (typeof env.workerId !== 'string') env.workerId = ''
  if (env.copy !== undefined && !Number.isInteger(env.copy)) delete env.copy
  if (env.cost !== undefined && typeof env.cost !== 'number') delete env.cost
  if (!env.ok) {
    const error = env.error as RemoteError
    if (error.status !== undefined && !isHttpStatus(error.status)) delete error.status
  }
  return env as Envelope
}

/** An HTTP status code: an integer from 100 to 599. */
export function isHttpStatus(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 100 && value <= 599
}

function isRemoteError(error: unknown): error is RemoteError {
  if (typeof error !== 'object' || error === null) return false
  const { code, name, message } = error as Record<string, unknown>
  return typeof code === 'string' && typeof name === 'string' && typeof message === 'string'
}

/** Turns a failed envelope into the error the caller receives. */
export function envelopeError(jobId: string, env: Extract<Envelope, { ok: false }>): HedgeyardError {
  const { error, workerId } = env
  const retryAfterMs =
    typeof error.retryAfterMs === 'number' && error.retryAfterMs >= 1
      ? Math.ceil(error.retryAfterMs)
      : undefined
  let code = PASSED_THROUGH.has(error.code) ? (error.code as ErrorCode) : 'HANDLER_ERROR'
  const message = code === 'HANDLER_ERROR' ? `${error.name}: ${error.message}` : error.message
  // A handler that reports the upstream's rate limit: the caller may come back after the delay.
  if (code === 'HANDLER_ERROR' && retryAfterMs !== undefined) code = 'RATE_LIMITED'
  return new HedgeyardError(code, message, {
    remoteName: error.name,
    ...(error.status === undefined ? {} : { remoteStatus: error.status }),
    workerId,
    isRetryable: error.retryable === true || retryAfterMs !== undefined,
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
    jobId,
  })
}
