import { Redis, type RedisOptions } from 'ioredis'
import { type ErrorCode, HedgeyardError, invalidArgument } from '../protocol/errors.js'
import { LUA_SCRIPTS, type ScriptName } from '../protocol/lua/scripts.generated.js'
import { endpointConnection, isRedisEndpoint, type RedisEndpoint } from './redis-endpoint.js'
import { classifyRedisError, describeError, failureDetails } from './redis-failure.js'

export type { RedisEndpoint, RedisTlsFiles } from './redis-endpoint.js'
export { redisFailure } from './redis-failure.js'

/**
 * Where Redis is: a URL (`redis://host:port/db`), a URL with credentials and TLS files given apart
 * ({@link RedisEndpoint}), or an ioredis client used as a template.
 */
export type RedisInput = string | RedisEndpoint | Redis

/**
 * What a connection is for. `command` fails fast when Redis is unreachable (no offline queue);
 * `blocking` serves one worker's blocking reads; `subscriber` receives results.
 */
export type ConnectionRole = 'command' | 'blocking' | 'subscriber'

/** A connection with the Hedgeyard scripts defined on it. */
export type Connection = Redis & {
  [K in ScriptName]: (...keysAndArgs: (string | number)[]) => Promise<unknown>
}

const ROLE_OPTIONS: Record<ConnectionRole, RedisOptions> = {
  // A command that was in flight when the connection dropped is failed, never silently resent:
  // resending a dispatch whose reply was lost would queue the job twice. No auto-pipelining: the
  // dispatcher and the completer already send one script call per batch, and for a lone call
  // ioredis's auto-pipeline (a pipeline object per flush, the write deferred to the next tick)
  // cost 20% of the CPU of a submit-and-await and 16% of its latency.
  command: { enableOfflineQueue: false, maxRetriesPerRequest: 0, enableAutoPipelining: false },
  blocking: { enableOfflineQueue: false, maxRetriesPerRequest: 0 },
  subscriber: { enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true },
}

/**
 * The one place connections are made: every connection of Hedgeyard comes from here, with the
 * protocol set explicitly, a name that `CLIENT LIST` shows, and the scripts defined through
 * `defineCommand` (EVALSHA, reloaded after NOSCRIPT).
 */
export function createConnection(input: RedisInput, role: ConnectionRole, name: string): Connection {
  checkRedisInput(input)
  const options: RedisOptions = {
    ...ROLE_OPTIONS[role],
    protocol: 2,
    lazyConnect: true,
    connectionName: name,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  }
  const endpoint = isRedisEndpoint(input) ? endpointConnection(input) : undefined
  const conn = (typeof input === 'string'
    ? new Redis(input, options as never)
    : endpoint !== undefined
      ? new Redis(endpoint.url, { ...options, ...endpoint.options } as never)
      : (input as Redis).duplicate(options as never)) as unknown as Connection
  // A URL can set it too (`?keyPrefix=`): checked on what the connection ended up with.
  if (conn.options.keyPrefix) {
    conn.disconnect()
    throw keyPrefixRefused(conn.options.keyPrefix)
  }
  // Errors surface through the commands that fail; without a listener ioredis would print them.
  // ioredis emits a refused AUTH here before it rejects the commands waiting on it with it.
  conn.on('error', maskCredentials)
  for (const [scriptName, script] of Object.entries(LUA_SCRIPTS)) {
    // No numberOfKeys: every call passes its own (protocol/scripts/call.ts).
    conn.defineCommand(scriptName, { lua: script.lua })
  }
  return conn
}

/**
 * Refuses a `redis` option that would connect but never work: an ioredis Cluster (the scripts
 * derive keys a Cluster cannot route, so every submit would time out) and a client with a
 * `keyPrefix` (it prefixes the KEYS of a script but not the keys the script derives from them).
 * @throws HedgeyardError INVALID_ARGUMENT
 */
export function checkRedisInput(input: unknown): asserts input is RedisInput {
  if (typeof input === 'string') return checkRedisUrl(input, 'redis')
  if (isRedisEndpoint(input)) return checkRedisUrl(input.url, 'redis.url')
  if (typeof input !== 'object' || input === null || typeof (input as Redis).duplicate !== 'function') {
    throw invalidArgument(
      `redis must be a URL, an object { url, username?, password?, tls? } or an ioredis client (got ${describeInput(input)})`,
    )
  }
  // `isCluster` rather than instanceof: the client may come from another copy of ioredis.
  if ((input as { isCluster?: unknown }).isCluster === true) {
    throw invalidArgument(
      'redis: an ioredis Cluster is not supported yet (every submit would time out): pass a URL or a Redis client of a standalone server (or of a primary found through Sentinel)',
    )
  }
  const keyPrefix = (input as Redis).options?.keyPrefix
  if (keyPrefix) throw keyPrefixRefused(keyPrefix)
}

/**
 * A Redis URL ioredis would take but not connect with (another scheme, no host) fails at once,
 * not after the readiness timeout.
 * @throws HedgeyardError INVALID_ARGUMENT
 */
function checkRedisUrl(url: unknown, field: string): void {
  if (typeof url !== 'string') throw invalidArgument(`${field} must be a URL (got ${typeof url})`)
  let parsed: URL | undefined
  try {
    parsed = new URL(url)
  } catch {
    parsed = undefined
  }
  const db = parsed?.pathname.replace(/^\//, '') ?? ''
  if (
    parsed === undefined ||
    (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') ||
    parsed.hostname === '' ||
    (db !== '' && !/^\d+$/.test(db))
  ) {
    throw invalidArgument(
      `${field} must be a URL redis://[user:password@]host[:port][/db] (rediss:// for TLS) (got '${maskUrl(url)}')`,
    )
  }
}

/** A Redis URL with its password masked, for messages and logs. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '****'
    return u.toString()
  } catch {
    return url.replace(/:[^:@/]*@/, ':****@')
  }
}

function keyPrefixRefused(keyPrefix: string): HedgeyardError {
  return invalidArgument(
    `redis: the client has keyPrefix '${keyPrefix}', which does not reach the keys Hedgeyard's scripts derive (every submit would time out): remove it and use the prefix option instead`,
  )
}

function describeInput(input: unknown): string {
  if (input === null) return 'null'
  if (typeof input !== 'object') return typeof input
  const className = input.constructor?.name
  if (className === undefined || className === 'Object') return 'a plain object without url'
  return `an object of class ${className}`
}

/**
 * Failures of the connection setup that waiting does not cure: credentials refused, a TLS
 * handshake that fails, a command of the setup the ACL user may not run (the SELECT of the URL's
 * database; ioredis skips its ready check when INFO is refused). ioredis retries them for ever,
 * or goes on with the wrong database; a caller is told at once.
 */
const FATAL_AT_CONNECT: ReadonlySet<ErrorCode> = new Set(['REDIS_AUTH', 'REDIS_TLS', 'REDIS_NOPERM'])

/**
 * Starts connecting and resolves once the connection is ready. Fails at once with REDIS_AUTH,
 * REDIS_TLS or REDIS_NOPERM when the setup is refused, and with REDIS_UNAVAILABLE when the
 * connection is not ready within `timeoutMs`.
 */
export function connectReady(conn: Redis, timeoutMs: number): Promise<void> {
  if (conn.status === 'ready') return Promise.resolve()
  if (conn.status === 'wait') conn.connect().catch(() => {})
  return new Promise((resolve, reject) => {
    let lastError: unknown
    const onError = (err: unknown) => {
      lastError = err
      const kind = classifyRedisError(err)
      if (FATAL_AT_CONNECT.has(kind.code)) {
        cleanup()
        reject(
          new HedgeyardError(
            kind.code,
            `connecting to Redis failed: ${describeError(err)}`,
            failureDetails(err, kind),
          ),
        )
      }
    }
    const onReady = () => {
      cleanup()
      checkDatabase(conn).then(resolve, reject)
    }
    const timer = setTimeout(() => {
      cleanup()
      const last = lastError === undefined ? '' : ` (last error: ${describeError(lastError)})`
      const o = conn.options
      const where = `${o.tls ? 'rediss' : 'redis'}://${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`
      reject(
        new HedgeyardError(
          'REDIS_UNAVAILABLE',
          `Redis at ${where} did not become ready within ${timeoutMs} ms${last}`,
          {
            cause: lastError,
          },
        ),
      )
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      conn.off('ready', onReady)
      conn.off('error', onError)
    }
    conn.on('ready', onReady)
    conn.on('error', onError)
  })
}

/**
 * A refused AUTH keeps its arguments in the error's `command`, the password among them, and the
 * error becomes the `cause` of what the caller gets (and may log or print): they are masked.
 */
function maskCredentials(err: unknown): void {
  const command = (err as { command?: { name?: unknown; args?: unknown } } | null)?.command
  if (
    typeof command?.name === 'string' &&
    /^(auth|hello)$/i.test(command.name) &&
    Array.isArray(command.args)
  ) {
    command.args = command.args.map(() => '****')
  }
}

/**
 * Whether the connection is on the database its URL names: a SELECT the server refuses (an index
 * past its `databases`) leaves ioredis on database 0, where another pool's keys may be.
 * @throws HedgeyardError INVALID_ARGUMENT naming the database, after closing the connection.
 */
async function checkDatabase(conn: Redis): Promise<void> {
  const wanted = conn.options.db ?? 0
  if (wanted === 0) return
  let info: string
  try {
    info = String(await conn.client('INFO'))
  } catch {
    // CLIENT INFO refused (an ACL, a server before 6.2): nothing to compare with.
    return
  }
  const db = Number(/(?:^| )db=(\d+)/.exec(info)?.[1])
  if (db === wanted) return
  conn.disconnect()
  throw new HedgeyardError(
    'INVALID_ARGUMENT',
    `the Redis URL names database ${wanted}, but the server refused to select it (its 'databases' setting is lower): the connection would have used database ${Number.isNaN(db) ? 0 : db}`,
  )
}
