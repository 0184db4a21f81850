import { ReplyError } from 'ioredis'
import { type ErrorCode, HedgeyardError } from '../protocol/errors.js'

/**
 * The code of each Redis error reply prefix a caller can act on. Redis 7 keeps the prefix of an
 * error raised by a command inside a script (`OOM command not allowed ... script: <sha>, on
 * @user_script:1.`), so a script's failure is classified like the command's; Hedgeyard's scripts
 * give their own refusals a prefix too (`WRONGTYPE <key> holds ...`, `NOPERM <script>: ...`,
 * `ERR <script>: ...`). A transaction Redis discarded (`EXECABORT`) is classified by the refusal
 * it names. Prefixes not listed here (`ERR`, `NOSCRIPT`, `NOGROUP`, `MISCONF`...) and replies
 * without one are PROTOCOL_ERROR.
 */
const PREFIX_CODES: Readonly<Record<string, ErrorCode>> = Object.freeze({
  NOAUTH: 'REDIS_AUTH',
  WRONGPASS: 'REDIS_AUTH',
  NOPERM: 'REDIS_NOPERM',
  OOM: 'REDIS_OOM',
  READONLY: 'REDIS_READONLY',
  BUSY: 'REDIS_BUSY',
  WRONGTYPE: 'REDIS_WRONGTYPE',
  MOVED: 'REDIS_CLUSTER',
  ASK: 'REDIS_CLUSTER',
  TRYAGAIN: 'REDIS_CLUSTER',
  CROSSSLOT: 'REDIS_CLUSTER',
  CLUSTERDOWN: 'REDIS_CLUSTER',
  // Redis is up but cannot serve yet: it loads its data, or is a replica cut off from its primary
  // (replica-serve-stale-data no), or lacks the replicas min-replicas-to-write asks for. The
  // command did not run, and waiting is the cure, as for a lost connection.
  LOADING: 'REDIS_UNAVAILABLE',
  MASTERDOWN: 'REDIS_UNAVAILABLE',
  NOREPLICAS: 'REDIS_UNAVAILABLE',
})

/** Socket error codes (`err.code` of Node's system errors) that mean Redis cannot be reached. */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'ENOENT',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
])

/** Certificate verification codes of Node's TLS (OpenSSL's X509_V_ERR names). */
const CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
])

/**
 * Classes of redis-errors that ioredis rejects a command with when its connection went away:
 * `AbortError` (the command was cut off by a closing connection), `InterruptError`, and
 * `MaxRetriesPerRequestError`. ioredis does not export them all, and a template client may come
 * from another copy of ioredis, so they are recognised by class name, which redis-errors sets.
 */
const ABORT_CLASSES: ReadonlySet<string> = new Set([
  'AbortError',
  'InterruptError',
  'MaxRetriesPerRequestError',
  // A cluster client none of whose nodes answered.
  'ClusterAllFailedError',
])

/**
 * The errors ioredis itself raises when a command meets no usable connection, or gets no reply
 * within the `commandTimeout` a template client may set, carry neither a code nor a class of
 * their own; ioredis recognises the first by comparing the whole message with its constant, and
 * so does this (a whole-message comparison with ioredis's fixed text, not a search).
 */
const CLIENT_CONNECTION_MESSAGES: ReadonlySet<string> = new Set([
  'Connection is closed.',
  "Stream isn't writeable and enableOfflineQueue options is false",
  'Command timed out',
  // A cluster client that has no node to send to, or lost every one.
  "Cluster isn't ready and enableOfflineQueue options is false",
  'None of startup nodes is available',
])

/**
 * What a cluster client fails a command with when it followed redirections (MOVED, ASK) or waited
 * out TRYAGAIN and CLUSTERDOWN as many times as it may: its fixed text, then the last error. The
 * slot's primary could not be reached in time (a failover under way): waiting is the cure.
 */
const CLUSTER_REDIRECTIONS = 'Too many Cluster redirections. Last error: '

/** What a failure of a Redis call means for the caller: its code, and the reply's prefix if any. */
export interface RedisFailureKind {
  code: ErrorCode
  redisPrefix?: string
}

/**
 * The prefix of a Redis error reply: its first word (`OOM`, `NOPERM`, `ERR`...), or undefined for
 * an error that is not a reply or whose first word is not an upper-case prefix.
 */
export function replyPrefix(err: unknown): string | undefined {
  return isReplyError(err) ? firstWord(err.message) : undefined
}

/** The first word of a reply's text when it is an upper-case prefix (`OOM`, `NOPERM`, `ERR`...). */
function firstWord(message: string): string | undefined {
  const space = message.indexOf(' ')
  const word = space < 0 ? message : message.slice(0, space)
  return word !== '' && word === word.toUpperCase() && word !== word.toLowerCase() ? word : undefined
}

/** Classifies a failure of a Redis call or connection by its reply prefix, code or class. */
export function classifyRedisError(err: unknown): RedisFailureKind {
  if (err instanceof HedgeyardError) {
    return err.redisPrefix === undefined
      ? { code: err.code }
      : { code: err.code, redisPrefix: err.redisPrefix }
  }
  if (isReplyError(err)) {
    const redisPrefix = replyPrefix(err)
    if (redisPrefix === undefined) return { code: 'PROTOCOL_ERROR' }
    const prefix = redisPrefix === 'EXECABORT' ? (discardedBecauseOf(err) ?? redisPrefix) : redisPrefix
    return { code: PREFIX_CODES[prefix] ?? 'PROTOCOL_ERROR', redisPrefix }
  }
  if (!(err instanceof Error)) return { code: 'PROTOCOL_ERROR' }
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string') {
    if (CERTIFICATE_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'))
      return { code: 'REDIS_TLS' }
    if (NETWORK_CODES.has(code)) return { code: 'REDIS_UNAVAILABLE' }
  }
  // Any other system error of a socket call (connect, read, write, getaddrinfo).
  if (typeof (err as { syscall?: unknown }).syscall === 'string') return { code: 'REDIS_UNAVAILABLE' }
  if (ABORT_CLASSES.has(err.name)) return { code: 'REDIS_UNAVAILABLE' }
  if (CLIENT_CONNECTION_MESSAGES.has(err.message)) return { code: 'REDIS_UNAVAILABLE' }
  if (err.message.startsWith(CLUSTER_REDIRECTIONS)) return { code: 'REDIS_UNAVAILABLE' }
  return { code: 'PROTOCOL_ERROR' }
}

const DISCARDED = 'EXECABORT Transaction discarded because of: '

/**
 * The prefix of the refusal that made Redis discard a transaction. Redis names it when it refused
 * EXEC itself (`EXECABORT Transaction discarded because of: NOPERM ...`); when it refused a command
 * as it was queued (an ACL, OOM), EXEC says `... because of previous errors.` and ioredis keeps
 * that command's reply in `previousErrors`.
 */
function discardedBecauseOf(err: Error): string | undefined {
  if (err.message.startsWith(DISCARDED)) return firstWord(err.message.slice(DISCARDED.length))
  const previous = (err as { previousErrors?: unknown }).previousErrors
  if (!Array.isArray(previous)) return undefined
  for (const e of previous) {
    const prefix = replyPrefix(e)
    if (prefix !== undefined) return prefix
  }
  return undefined
}

/**
 * Maps a failure of a Redis call to a HedgeyardError whose code says what the caller can do (see
 * docs/errors.md), with the original error as `cause` and the reply's prefix as `redisPrefix`.
 */
export function redisFailure(err: unknown, what: string): HedgeyardError {
  if (err instanceof HedgeyardError) return err
  const kind = classifyRedisError(err)
  return new HedgeyardError(kind.code, `${what} failed: ${describeError(err)}`, failureDetails(err, kind))
}

/** The details of a HedgeyardError made from `err`: `cause`, and `redisPrefix` when there is one. */
export function failureDetails(
  err: unknown,
  kind: RedisFailureKind,
): { cause: unknown; redisPrefix?: string } {
  return kind.redisPrefix === undefined ? { cause: err } : { cause: err, redisPrefix: kind.redisPrefix }
}

/** An error's message, with its code when the message does not show it (TLS errors). */
export function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as { code?: unknown }).code
  return typeof code === 'string' && !err.message.includes(code) ? `${err.message} (${code})` : err.message
}

/**
 * ioredis rejects with redis-errors' ReplyError (ioredis 6 also with subclasses of it named
 * `ReplyError`). A template client from another copy of ioredis has its own copy of the class, so
 * the name is checked too.
 */
function isReplyError(err: unknown): err is Error {
  return err instanceof ReplyError || (err instanceof Error && err.name === 'ReplyError')
}
