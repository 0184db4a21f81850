import { type ErrorCode, HedgeyardError } from './errors.js'

/** Codes a worker or a script reports as they are; any other remote failure is HANDLER_ERROR. */
const PASSED_THROUGH = new Set<string>(['RESULT_TOO_LARGE', 'PROTOCOL_ERROR', 'DEAD_LETTERED', 'TIMEOUT'])

/**
 * The attempts a job may use when its entry has no `max` field. dispatch.lua leaves `max` out when
 * it is 3, and the Dispatcher's default maxAttempts is this value, so most entries leave it out.
 */
export const DEFAULT_MAX_ATTEMPTS = 3

/** A job as it travels in a worker stream (all fields are plain text, readable with XRANGE). */
export interface JobEntry {
  entryId: string
  jobId: string
  payload: string
  session: string
  attempt: number
  /** The copy this entry is (1 for the first; hedges and retries count up); rescue keeps it. */
  copy: number
  producer: string
  deadline: number
  enqueued: number
  /** '' for a plain job; 'h' when copies may race (hedge, retry); 't' for a tied copy. */
  race: string
  /** How long the producer wants the result kept (ms), or undefined for the worker's default. */
  resultTtlMs: number | undefined
}

/** The error part of a failed job's result envelope. */
export interface RemoteError {
  code: string
  name: string
  message: string
  retryable?: boolean
}

/** A result envelope as stored in `res:<jobId>` and published to the producer. */
export type Envelope =
  | { ok: true; value?: unknown; workerId: string; copy?: number }
  | { ok: false; error: RemoteError; workerId: string; copy?: number }

/**
 * Decodes the flat field list of a stream entry; returns undefined when it is not a job entry.
 * Fields left out take their defaults: a plain job's entry has no `session`, `attempt` (1), `copy`
 * (= attempt), `race`, `max` or `ttl` (the worker's resultTtlMs).
 */
export function decodeEntry(entryId: string, fields: string[]): JobEntry | undefined {
  let id = ''
  let payload: string | undefined
  let producer = ''
  let session = ''
  let attempt = ''
  let copy = ''
  let deadline = ''
  let enqueued = ''
  let race = ''
  let ttl = ''
  // A switch on the field names, not an object built per entry: this runs once per job.
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const value = fields[i + 1] as string
    switch (fields[i]) {
      case 'id':
        id = value
        break
      case 'payload':
        payload = value
        break
      case 'producer':
        producer = value
        break
      case 'session':
        session = value
        break
      case 'attempt':
        attempt = value
        break
      case 'copy':
        copy = value
        break
      case 'deadline':
        deadline = value
        break
      case 'enqueued':
        enqueued = value
        break
      case 'race':
        race = value
        break
      case 'ttl':
        ttl = value
        break
    }
  }
  if (id === '' || payload === undefined || producer === '') return undefined
  const attemptNo = attempt === '' ? 1 : Number(attempt)
  return {
    entryId,
    jobId: id,
    payload,
    session,
    attempt: attemptNo,
    copy: copy === '' ? attemptNo : Number(copy),
    producer,
    deadline: deadline === '' ? Number.POSITIVE_INFINITY : Number(deadline),
    enqueued: enqueued === '' ? 0 : Number(enqueued),
    race,
    resultTtlMs: ttl === '' ? undefined : Number(ttl),
  }
}

/** Parses a result envelope; a malformed one becomes a PROTOCOL_ERROR failure. */
export function decodeEnvelope(text: string): Envelope {
  try {
    const env = JSON.parse(text) as Envelope
    if (typeof env === 'object' && env !== null && typeof env.ok === 'boolean') return env
  } catch {
    // fall through
  }
  return {
    ok: false,
    workerId: '',
    error: { code: 'PROTOCOL_ERROR', name: 'HedgeyardError', message: 'malformed result envelope' },
  }
}

/** Turns a failed envelope into the error the caller receives. */
export function envelopeError(jobId: string, env: Extract<Envelope, { ok: false }>): HedgeyardError {
  const { error, workerId } = env
  const code = PASSED_THROUGH.has(error.code) ? (error.code as ErrorCode) : 'HANDLER_ERROR'
  const message = code === 'HANDLER_ERROR' ? `${error.name}: ${error.message}` : error.message
  return new HedgeyardError(code, message, {
    remoteName: error.name,
    workerId,
    isRetryable: error.retryable === true,
    jobId,
  })
}
