import { invalidArgument } from './errors.js'
import { MAX_CLASS_BYTES, MAX_ID_BYTES, MAX_TIMEOUT_MS } from './wire.js'

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/

/**
 * Pool, prefix and worker names become part of Redis keys: letters, digits and `_ . : -`, so they
 * never contain the `{}` of a hash tag, spaces or separators that would make keys ambiguous.
 */
export function checkName(field: string, value: unknown): string {
  if (typeof value !== 'string' || !NAME.test(value)) {
    throw invalidArgument(
      `${field} must be 1-100 characters of letters, digits, '_', '.', ':' or '-' (got ${describe(value)})`,
    )
  }
  return value
}

const LIMIT_KEY = new RegExp(`^[A-Za-z0-9_.:-]{1,${MAX_ID_BYTES}}$`)
const LIMIT_CLASS = new RegExp(`^[A-Za-z0-9_.-]{1,${MAX_CLASS_BYTES}}$`)

/**
 * A tenant (an API key's id, a user) becomes part of Redis keys and of job entries: letters,
 * digits and `_ . : -`, at most 128 bytes, as a job id.
 */
export function checkLimitKey(field: string, value: unknown): string {
  if (typeof value !== 'string' || !LIMIT_KEY.test(value)) {
    throw invalidArgument(
      `${field} must be 1-${MAX_ID_BYTES} characters of letters, digits, '_', '.', ':' or '-' (got ${describe(value)})`,
    )
  }
  return value
}

/**
 * A limit class: letters, digits and `_ . -`, at most 64 bytes. No `:`, so that the key of a
 * tenant's quota, `quota:<class>:<tenant>`, names one class and one tenant.
 */
export function checkLimitClass(field: string, value: unknown): string {
  if (typeof value !== 'string' || !LIMIT_CLASS.test(value)) {
    throw invalidArgument(
      `${field} must be 1-${MAX_CLASS_BYTES} characters of letters, digits, '_', '.' or '-' (got ${describe(value)})`,
    )
  }
  return value
}

/** Sessions are free text up to 256 characters, without control characters or braces. */
export function checkSession(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 256 || hasForbiddenChar(value)) {
    throw invalidArgument(
      `session must be a string of 1-256 characters without control characters or braces (got ${describe(value)})`,
    )
  }
  return value
}

function hasForbiddenChar(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c === 0x7f || c === 0x7b || c === 0x7d) return true
  }
  return false
}

/** An integer in [min, max]; `unit` follows the range in the error (e.g. ' ms'). */
export function checkInt(
  field: string,
  value: unknown,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
  unit = '',
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `between ${min} and ${max}`
    throw invalidArgument(`${field} must be an integer ${range}${unit} (got ${describe(value)})`)
  }
  return value
}

/** The longest delay a Node.js timer waits (about 24.9 days); a longer one fires after 1 ms. */
export const MAX_TIMER_MS = MAX_TIMEOUT_MS

/**
 * A duration in ms that a timer waits for, or that sets one (a submit's timeout, a hedge delay, a
 * backoff, the heartbeat every leaseMs / 3): an integer from `min` up to `max`, at most
 * {@link MAX_TIMER_MS}.
 */
export function checkMs(field: string, value: unknown, min: number, max = MAX_TIMER_MS): number {
  return checkInt(
    field,
    value,
    min,
    max,
    max === MAX_TIMER_MS ? ' ms, the longest a Node.js timer waits' : ' ms',
  )
}

/** One of a fixed set of strings. */
export function checkOneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw invalidArgument(
      `${field} must be one of ${allowed.map((a) => `'${a}'`).join(', ')} (got ${describe(value)})`,
    )
  }
  return value as T
}

/** A short, safe rendering of a bad value for an error message. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value)
  return typeof value
}

/** Rejects options that are not known, naming them, so a typo does not pass silently. */
export function checkKnownOptions(component: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw invalidArgument(`${component}: unknown option '${key}' (allowed: ${known.join(', ')})`)
    }
  }
}

/** A finite number in [min, max]. */
export function checkNumber(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw invalidArgument(`${field} must be a number between ${min} and ${max} (got ${describe(value)})`)
  }
  return value
}
