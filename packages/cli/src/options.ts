import { accessSync, constants } from 'node:fs'
import { type Command, InvalidArgumentError, Option } from 'commander'
import { type DispatcherOptions, MAX_CELLS } from 'hedgeyard'
import { fail } from './output.js'

/** Options every command takes. */
export interface CommonOptions {
  /** The --redis URL, or (with a TLS flag or HEDGEYARD_REDIS_PASSWORD) the URL with them. */
  redis: DispatcherOptions['redis']
  pool: string
  prefix: string
}

/** The Redis URL when neither --redis nor HEDGEYARD_REDIS_URL says otherwise. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

/** Adds --redis, the TLS flags, --pool and --prefix to a command. */
export function withCommonOptions(cmd: Command): Command {
  return withRedisOptions(cmd)
    .option('--pool <name>', 'pool name', 'default')
    .option('--prefix <prefix>', 'key prefix', 'hy')
}

/**
 * Adds --redis and --tls-ca, --tls-cert, --tls-key; before the action runs, the `redis` option
 * becomes what the library takes: the URL, or `{ url, password?, tls? }` when a TLS file or
 * HEDGEYARD_REDIS_PASSWORD (a password kept out of the command line) is given.
 */
export function withRedisOptions(cmd: Command): Command {
  const env = (name: string) => process.env[name] || undefined
  return cmd
    .option(
      '--redis <url>',
      'Redis URL, rediss:// for TLS, redis+cluster://host:port,host:port for a Redis Cluster (env HEDGEYARD_REDIS_URL; the password may come from HEDGEYARD_REDIS_PASSWORD)',
      env('HEDGEYARD_REDIS_URL') ?? DEFAULT_REDIS_URL,
    )
    .option(
      '--tls-ca <file>',
      "PEM file of the CA that signed the Redis server's certificate (env HEDGEYARD_TLS_CA)",
      env('HEDGEYARD_TLS_CA'),
    )
    .option(
      '--tls-cert <file>',
      'PEM file of a client certificate, for a Redis with tls-auth-clients (env HEDGEYARD_TLS_CERT)',
      env('HEDGEYARD_TLS_CERT'),
    )
    .option(
      '--tls-key <file>',
      'PEM file of the client certificate key (env HEDGEYARD_TLS_KEY)',
      env('HEDGEYARD_TLS_KEY'),
    )
    .hook('preAction', (_, action) => {
      action.setOptionValue('redis', redisInputOf(action, env('HEDGEYARD_REDIS_PASSWORD')))
    })
}

/** The flags of the TLS files, with the environment variable each falls back to. */
const TLS_FLAGS = [
  { option: 'tlsCa', field: 'caFile', flag: '--tls-ca', env: 'HEDGEYARD_TLS_CA' },
  { option: 'tlsCert', field: 'certFile', flag: '--tls-cert', env: 'HEDGEYARD_TLS_CERT' },
  { option: 'tlsKey', field: 'keyFile', flag: '--tls-key', env: 'HEDGEYARD_TLS_KEY' },
] as const

/** The `redis` option of the library from the flags; fails naming the flag, before any connection. */
function redisInputOf(action: Command, password: string | undefined): DispatcherOptions['redis'] {
  const opts = action.opts<{ redis: string; tlsCa?: string; tlsCert?: string; tlsKey?: string }>()
  const tls: Record<string, string> = {}
  for (const t of TLS_FLAGS) {
    const path = opts[t.option]
    // Named as the user gave it: the flag, or the environment variable it fell back to.
    const name = action.getOptionValueSource(t.option) === 'cli' ? t.flag : t.env
    if (path !== undefined) tls[t.field] = readable(name, path)
  }
  const hasTls = Object.keys(tls).length > 0
  if (hasTls && !opts.redis.startsWith('rediss://') && !opts.redis.startsWith('rediss+cluster://')) {
    fail(
      'INVALID_ARGUMENT',
      '--tls-ca, --tls-cert and --tls-key are for a TLS connection: use a rediss:// URL',
    )
  }
  if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) {
    fail('INVALID_ARGUMENT', '--tls-cert and --tls-key go together (a client certificate and its key)')
  }
  if (password !== undefined && /^rediss?(\+cluster)?:\/\/[^/@]*:[^/@]*@/.test(opts.redis)) {
    fail(
      'INVALID_ARGUMENT',
      'HEDGEYARD_REDIS_PASSWORD is set and the Redis URL has a password too: give it once',
    )
  }
  if (!hasTls && password === undefined) return opts.redis
  return { url: opts.redis, ...(password === undefined ? {} : { password }), ...(hasTls ? { tls } : {}) }
}

function readable(flag: string, path: string): string {
  try {
    accessSync(path, constants.R_OK)
  } catch (err) {
    fail(
      'INVALID_ARGUMENT',
      `${flag}: cannot read '${path}' (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    )
  }
  return path
}

/** Parses a non-negative integer option, naming it in the error. */
export function intOption(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      // Commander's own error: it says where the value came from (a flag, or an environment variable).
      throw new InvalidArgumentError(`${name} must be a non-negative integer (got '${value}')`)
    }
    return n
  }
}

/** The --cells option: the pool spread over that many cells (docs/cells.md). */
export interface CellsOption {
  cells?: number
}

/**
 * Adds --cells (env HEDGEYARD_CELLS) to a command: the pool is one logical pool over that many
 * cells, `<pool>.0` ... `<pool>.<n-1>`; without it the command works on the one pool it names.
 */
export function withCellsOption(cmd: Command, description: string): Command {
  return cmd.addOption(
    new Option('--cells <n>', `${description} (1-${MAX_CELLS}; see docs/cells.md)`)
      .env('HEDGEYARD_CELLS')
      .argParser((value: string) => {
        const n = Number(value)
        if (!/^\d+$/.test(value) || n < 1 || n > MAX_CELLS) {
          throw new InvalidArgumentError(
            `--cells must be a whole number from 1 to ${MAX_CELLS} (got '${value}')`,
          )
        }
        return n
      }),
  )
}
