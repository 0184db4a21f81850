import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/** A redis-server process owned by a benchmark: nothing else talks to it. */
export interface RedisServer {
  url: string
  port: number
  /** `redis_version` from `INFO server`. */
  version: string
  stop(): Promise<void>
}

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** The binary, looked up on PATH. */
  binary: string
  /** How long to wait for the first PING answer. */
  readyTimeoutMs: number
}

/** Defaults of {@link startRedisServer}. */
export const REDIS_SERVER_DEFAULTS: Readonly<RedisServerOptions> = Object.freeze({
  binary: 'redis-server',
  readyTimeoutMs: 10_000,
})

/** A free TCP port on the loopback interface. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Waits for PING on `url`; `startFailure` says when the process is gone and waiting is pointless. */
async function waitForPing(
  url: string,
  timeoutMs: number,
  startFailure: () => Error | undefined,
): Promise<string> {
  const deadline = Date.now() + timeoutMs
  // A spawn failure is reported on the next tick: let it arrive before the first look.
  await new Promise((r) => setImmediate(r))
  for (;;) {
    const failure = startFailure()
    if (failure) throw failure
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      const info = await client.info('server')
      client.disconnect()
      return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
    } catch (err) {
      client.disconnect()
      if (Date.now() > deadline)
        throw new Error(`redis-server did not answer PING within ${timeoutMs} ms`, { cause: err })
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/**
 * Starts a private redis-server on a free loopback port, without persistence, and resolves once it
 * answers PING. The caller must `stop()` it.
 */
export async function startRedisServer(options: Partial<RedisServerOptions> = {}): Promise<RedisServer> {
  const { binary, readyTimeoutMs } = { ...REDIS_SERVER_DEFAULTS, ...options }
  const port = await freePort()
  // --save '' and --appendonly no: a benchmark must not pay for (or be interrupted by) persistence.
  const dir = mkdtempSync(join(tmpdir(), 'hedgeyard-bench-redis-'))
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
  ]
  const child = spawn(binary, args, { stdio: 'ignore' })
  let spawnError: Error | undefined
  child.once('error', (err) => {
    spawnError = err
  })
  const startFailure = (): Error | undefined => {
    if (spawnError || child.pid === undefined) {
      return new Error(`cannot start ${binary}: install redis-server (scripts/bootstrap.sh --redis)`, {
        cause: spawnError,
      })
    }
    if (child.exitCode !== null) return new Error(`${binary} exited with code ${child.exitCode} on start`)
    return undefined
  }
  const url = `redis://127.0.0.1:${port}`
  // If this process dies first (an uncaught error, EPIPE on a closed stdout), the server goes too.
  const killOnExit = () => {
    child.kill('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', killOnExit)
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit)
    // A child that never spawned (no binary) has no pid and never emits 'exit'.
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const version = await waitForPing(url, readyTimeoutMs, startFailure)
    return { url, port, version, stop }
  } catch (err) {
    await stop()
    throw err
  }
}
