import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type PoolKeys, poolKeys } from 'hedgeyard'
import { queueKey } from 'hedgeyard/internal'
import { Cluster, Redis } from 'ioredis'
import { inject } from 'vitest'

export const root = join(dirname(fileURLToPath(import.meta.url)), '../../..')
/** The built CLI entry point, as `hedgeyard` runs it. */
export const CLI = join(root, 'packages/cli/dist/main.js')
/** Handler modules for worker processes. */
export const FIXTURES = join(root, 'test/fixtures')

let counter = 0
/** A pool name of its own for each test, so tests never see each other's workers. */
export function uniquePool(label = 't'): string {
  counter++
  return `${label}-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 7)}`
}

/** The URL of the test run's Redis. */
export function redisUrl(): string {
  return inject('redisUrl')
}

/** A client for assertions: of one server, or of a cluster when the run's Redis is one. */
export type TestClient = Redis | Cluster

/**
 * A plain client for assertions: of the run's Redis, an ioredis `Cluster` when that is a cluster
 * (`redis+cluster://h1:p1,h2:p2`, no credentials or TLS: the harness's cluster has none); of the
 * one server `url` names, when given.
 */
export function client(url: string): Redis
export function client(): TestClient
export function client(url?: string): TestClient {
  const run = redisUrl()
  const c =
    url === undefined && run.startsWith('redis+cluster://')
      ? new Cluster(
          run
            .slice('redis+cluster://'.length)
            .split(',')
            .map((address) => {
              const [host = '127.0.0.1', port = '6379'] = address.split(':')
              return { host, port: Number(port) }
            }),
          { redisOptions: { maxRetriesPerRequest: 1 } },
        )
      : new Redis(url ?? run, { maxRetriesPerRequest: 1 })
  c.on('error', () => {})
  return c
}

/** The servers that hold keys and scripts: every primary of a cluster, or the one server. */
export function primaries(c: TestClient): Redis[] {
  return c instanceof Cluster ? c.nodes('master') : [c]
}

/** One client connection of the run's Redis, as `CLIENT LIST` shows it, and the server it is on. */
export interface ClientConnection {
  id: string
  name: string
  /** The server (on a cluster, the node) that lists it: `CLIENT KILL ID` goes there. */
  server: Redis
  /** Its line of `CLIENT LIST`. */
  line: string
}

/**
 * Every client connection of the run's Redis: `CLIENT LIST` of the one server, or of every node of
 * a cluster (a worker's blocking read sits on its pool slot's primary, not on a node at random).
 */
export async function clientConnections(c: TestClient): Promise<ClientConnection[]> {
  const servers = c instanceof Cluster ? c.nodes('all') : [c]
  const out: ClientConnection[] = []
  for (const server of servers) {
    const list = String(await server.client('LIST'))
    for (const line of list.split('\n')) {
      const id = /^id=(\d+)/.exec(line)?.[1]
      if (id !== undefined) out.push({ id, name: / name=(\S*) /.exec(line)?.[1] ?? '', server, line })
    }
  }
  return out
}

/** Closes a connection found by {@link clientConnections}; resolves to how many were closed (0 or 1). */
export async function killConnection(conn: ClientConnection): Promise<number> {
  return Number(await conn.server.client('KILL', 'ID', conn.id))
}

/** Every key of a pool (SCAN, never KEYS). */
export async function poolKeysInRedis(c: TestClient, pool: string, prefix = 'hy'): Promise<string[]> {
  const found: string[] = []
  // On a cluster every primary is scanned, not only the pool slot's: a key of the pool that missed
  // its hash tag would land elsewhere, and a test should see it.
  for (const server of primaries(c)) {
    let cursor = '0'
    do {
      const [next, keys] = await server.scan(
        cursor,
        'MATCH',
        `${poolKeys(prefix, pool).base}*`,
        'COUNT',
        1000,
      )
      cursor = next
      found.push(...keys)
    } while (cursor !== '0')
  }
  return found.sort()
}

/**
 * Whether `key` is one that `build` makes (`queueKey`, `resultKey`, ...): it starts with what `build`
 * gives for an empty id. Picks keys of one kind out of {@link poolKeysInRedis}.
 */
export function isKeyOf(key: string, keys: PoolKeys, build: (keys: PoolKeys, id: string) => string): boolean {
  return key.startsWith(build(keys, ''))
}

/** Deletes every key of a pool. */
export async function cleanupPool(c: TestClient, pool: string, prefix = 'hy'): Promise<void> {
  const keys = await poolKeysInRedis(c, pool, prefix)
  if (keys.length > 0) await c.del(...keys)
}

/** Asserts the load invariant: for every worker, `ZSCORE load <w>` == `XLEN q:<w>`. Returns the pairs. */
export async function loadAndLengths(
  c: TestClient,
  pool: string,
  prefix = 'hy',
): Promise<{ workerId: string; load: number; xlen: number }[]> {
  const keys = poolKeys(prefix, pool)
  const loads = await c.zrange(keys.load, '0', '-1', 'WITHSCORES')
  const out: { workerId: string; load: number; xlen: number }[] = []
  for (let i = 0; i < loads.length; i += 2) {
    const workerId = loads[i] as string
    out.push({ workerId, load: Number(loads[i + 1]), xlen: await c.xlen(queueKey(keys, workerId)) })
  }
  return out
}

/** Polls `check` until it returns a truthy value or the time runs out. */
export async function eventually<T>(
  check: () => Promise<T> | T,
  timeoutMs = 10_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const value = await check()
      if (value) return value
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}

/** A worker process started through the CLI, as `hedgeyard worker` runs in production. */
export interface WorkerProcess {
  child: ChildProcess
  output: () => string
  /** Sends SIGTERM and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>
}

/** Starts `hedgeyard worker` with a fixture handler and waits until its workers are registered. */
export async function spawnWorker(options: {
  pool: string
  /** A file of test/fixtures, or a package name (`@hedgeyard/genai`). */
  handler: string
  count?: number
  concurrency?: number
  queueCapacity?: number
  idPrefix?: string
  env?: Record<string, string>
  extraArgs?: string[]
  /** Another Redis than the test run's. */
  redis?: string
}): Promise<WorkerProcess> {
  const args = [
    CLI,
    'worker',
    '--redis',
    options.redis ?? redisUrl(),
    '--pool',
    options.pool,
    '--handler',
    options.handler.startsWith('@') ? options.handler : join(FIXTURES, options.handler),
    '--count',
    String(options.count ?? 1),
    '--concurrency',
    String(options.concurrency ?? 8),
  ]
  if (options.queueCapacity !== undefined) args.push('--queue-capacity', String(options.queueCapacity))
  if (options.idPrefix) args.push('--id-prefix', options.idPrefix)
  args.push(...(options.extraArgs ?? []))
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...options.env, HEDGEYARD_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d) => {
    output += d
  })
  child.stderr?.on('data', (d) => {
    output += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await eventually(() => {
    if (child.exitCode !== null) throw new Error(`worker exited early:\n${output}`)
    return output.includes('workers started')
  }, 15_000)
  return {
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      return exited
    },
  }
}

/** A promise that stays pending until `open()`: holds handlers in a test until it says so. */
export function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {}
  const wait = new Promise<void>((r) => {
    open = r
  })
  return { wait, open }
}

/**
 * Publishes on a channel as the scripts do: SPUBLISH on a cluster (the pool's subscribers listen
 * to sharded channels there), PUBLISH on one server.
 */
export function publishAsScripts(c: TestClient, channel: string, message: string): Promise<unknown> {
  return c instanceof Cluster ? c.call('SPUBLISH', channel, message) : c.publish(channel, message)
}
