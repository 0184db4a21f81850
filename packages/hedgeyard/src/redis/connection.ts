import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { type ErrorCode, HedgeyardError, invalidArgument } from '../protocol/errors.js'
import { LUA_SCRIPTS, type ScriptName } from '../protocol/lua/scripts.generated.js'
import {
  clusterConnection,
  clusterDisplays,
  isShardedSubscriber,
  primariesReady,
  subscribeSharded,
  unblockOnItsNode,
} from './cluster-connection.js'
import { clusterSpecOf, isClusterUrl, isRedisCluster, type RedisCluster } from './cluster-endpoint.js'
import { endpointConnection, isRedisEndpoint, type RedisEndpoint } from './redis-endpoint.js'
import { classifyRedisError, describeError, failureDetails } from './redis-failure.js'

export type { RedisCluster } from './cluster-endpoint.js'
export type { RedisEndpoint, RedisTlsFiles } from './redis-endpoint.js'
export { redisFailure } from './redis-failure.js'

/**
 * Where Redis is: a URL (`redis://host:port/db`), a URL with credentials and TLS files given apart
 * ({@link RedisEndpoint}), a Redis Cluster (`redis+cluster://h1:7000,h2:7001` or
 * {@link RedisCluster}), or an ioredis client used as a template.
 */
export type RedisInput = string | RedisEndpoint | RedisCluster | Redis

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

/** Reconnection delays (ms) after the n-th failed attempt. */
const retryStrategy = (times: number) => Math.min(50 * times, 1000)

/**
 * The one place connections are made: every connection of Hedgeyard comes from here, with the
 * protocol set explicitly, a name that `CLIENT LIST` shows, and the scripts defined through
 * `defineCommand` (EVALSHA, reloaded after NOSCRIPT). `slotKey` is a key of the slot the
 * connection serves (the pool's `keys.base`): on a cluster, a blocking or subscriber connection
 * goes to the node that owns it.
 */
export function createConnection(
  input: RedisInput,
  role: ConnectionRole,
  name: string,
  slotKey?: string,
): Connection {
  checkRedisInput(input)
  const cluster = clusterSpecOf(input)
  if (cluster !== undefined) {
    const roleOptions = { ...ROLE_OPTIONS[role], retryStrategy }
    return withScripts(clusterConnection(cluster, role, roleOptions, name, slotKey), true)
  }
  const options: RedisOptions = {
    ...ROLE_OPTIONS[role],
    protocol: 2,
    lazyConnect: true,
    connectionName: name,
    retryStrategy,
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
  return withScripts(conn, false)
}

/**
 * Defines the scripts on a new connection (on a cluster, in the form that sends its messages with
 * SPUBLISH) and keeps its errors from being printed.
 */
function withScripts(conn: Connection, isCluster: boolean): Connection {
  // Errors surface through the commands that fail; without a listener ioredis would print them.
  // ioredis emits a refused AUTH here before it rejects the commands waiting on it with it.
  conn.on('error', maskCredentials)
  conn.on('node error', maskCredentials)
  for (const [scriptName, script] of Object.entries(LUA_SCRIPTS)) {
    // No numberOfKeys: every call passes its own (protocol/scripts/call.ts).
    const lua = isCluster && 'sharded' in script ? script.sharded : script.lua
    conn.defineCommand(scriptName, { lua })
  }
  return conn
}

/**
 * Subscribes a subscriber connection to `channels` (all of one pool): SSUBSCRIBE on a cluster,
 * where the scripts send with SPUBLISH (sharded pub/sub: a message goes to the pool's shard
 * only), SUBSCRIBE on one server.
 */
export function subscribeTo(conn: Connection, channels: readonly string[]): Promise<unknown> {
  return isShardedSubscriber(conn) ? subscribeSharded(conn, channels) : conn.subscribe(...channels)
}

/** Calls `listener` with each message `conn` receives on its subscriptions, as bytes. */
export function onMessage(conn: Connection, listener: (channel: Buffer, message: Buffer) => void): void {
  conn.on(isShardedSubscriber(conn) ? 'smessageBuffer' : 'messageBuffer', listener)
}

/**
 * Ends a blocked read at once, as if its BLOCK had run out: `CLIENT UNBLOCK clientId`, sent on
 * `cmd`, on a cluster to the node `blocking` is connected to. Whether a read was unblocked.
 */
export async function unblockClient(
  cmd: Connection,
  blocking: Connection,
  clientId: number,
): Promise<boolean> {
  return (await unblockOnItsNode(cmd, blocking, clientId)) ?? (await cmd.client('UNBLOCK', clientId)) === 1
}

/**
 * Checks the `redis` option: a URL, an endpoint or a cluster with valid fields, or a client.
 * Refuses an ioredis Cluster client (a cluster is named by its nodes: the factory makes each
 * role's connection itself) and a client with a `keyPrefix` (it prefixes the KEYS of a script but
 * not the keys the script derives from them).
 * @throws HedgeyardError INVALID_ARGUMENT naming the field
 */
export function checkRedisInput(input: unknown): asserts input is RedisInput {
  if (
    isClusterUrl(input) ||
    isRedisCluster(input) ||
    isClusterUrl((input as { url?: unknown } | null)?.url)
  ) {
    clusterSpecOf(input)
    return
  }
  if (typeof input === 'string') return checkRedisUrl(input, 'redis')
  if (isRedisEndpoint(input)) return checkRedisUrl(input.url, 'redis.url')
  if (typeof input !== 'object' || input === null || typeof (input as Redis).duplicate !== 'function') {
    throw invalidArgument(
      `redis must be a URL, an object { url, username?, password?, tls? }, a cluster { cluster: [urls], ... } or an ioredis client (got ${describeInput(input)})`,
    )
  }
  // `isCluster` rather than instanceof: the client may come from another copy of ioredis.
  if ((input as { isCluster?: unknown }).isCluster === true) {
    throw invalidArgument(
      "redis: an ioredis Cluster client is not taken (each of Hedgeyard's connections needs settings of its own): name the cluster with a URL redis+cluster://host:port,host:port or { cluster: ['redis://host:port', ...] }",
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
export function connectReady(conn: Redis | Cluster, timeoutMs: number): Promise<void> {
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
    const startedAt = Date.now()
    const onReady = () => {
      cleanup()
      const rest = Math.max(0, timeoutMs - (Date.now() - startedAt))
      ;(conn instanceof Cluster ? primariesReady(conn, rest) : checkDatabase(conn)).then(resolve, reject)
    }
    const timer = setTimeout(() => {
      cleanup()
      const last = lastError === undefined ? '' : ` (last error: ${describeError(lastError)})`
      const where = describeTarget(conn)
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
      conn.off('node error', onError)
    }
    conn.on('ready', onReady)
    conn.on('error', onError)
    // A cluster reports a node's refused AUTH or TLS handshake under this name.
    conn.on('node error', onError)
  })
}

/** What a connection connects to, for messages: its URL without credentials. */
function describeTarget(conn: Redis | Cluster): string {
  const display = clusterDisplays.get(conn)
  if (display !== undefined) return display
  const o = (conn as Redis).options
  return `${o.tls ? 'rediss' : 'redis'}://${o.host ?? '127.0.0.1'}:${o.port ?? 6379}/${o.db ?? 0}`
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
async function checkDatabase(conn: Redis | Cluster): Promise<void> {
  if (conn instanceof Cluster) return
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
