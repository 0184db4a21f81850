import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'

/** A Redis server for tests: its URL and a way to stop it. */
export interface TestRedis {
  url: string
  /** How it was provided: REDIS_URL, a testcontainers container, or a local redis-server process. */
  kind: 'env' | 'container' | 'local'
  stop(): Promise<void>
}

/** A free TCP port on the loopback interface. */
export function freePort(): Promise<number> {
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

function hasDockerEngine(): boolean {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5_000 })
    return true
  } catch {
    return false
  }
}

/** Waits until PING answers on `url`. */
export async function waitForPing(url: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.ping()
      client.disconnect()
      return
    } catch (err) {
      client.disconnect()
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 50))
    }
  }
}

/** A local redis-server process of the test's own, that the test can restart. */
export interface LocalRedis extends TestRedis {
  port: number
  dir: string
  /** Stops the server (SIGTERM: a clean shutdown that writes the AOF; SIGKILL: a crash) and starts it again on the same port and data. */
  restart(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>
}

/** A local redis-server process on a free port, with its own data directory. */
export async function startLocalRedis(extraArgs: string[] = []): Promise<LocalRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'hedgeyard-redis-'))
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
    ...extraArgs,
  ]
  const url = `redis://127.0.0.1:${port}`
  let child: ChildProcess = spawn('redis-server', args, { stdio: 'ignore' })
  await waitForPing(url)
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r))
      child.kill(signal)
      await exited
    }
  }
  return {
    url,
    kind: 'local',
    port,
    dir,
    async restart(signal = 'SIGTERM') {
      await kill(signal)
      child = spawn('redis-server', args, { stdio: 'ignore' })
      await waitForPing(url)
    },
    async stop() {
      await kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** The Redis of a test run: REDIS_URL when set, a container where a Docker engine answers, else a local redis-server. */
export async function startTestRedis(): Promise<TestRedis> {
  const fromEnv = process.env.REDIS_URL
  if (fromEnv) return { url: fromEnv, kind: 'env', stop: async () => {} }
  if (hasDockerEngine()) {
    const { RedisContainer } = await import('@testcontainers/redis')
    const container = await new RedisContainer('redis:7.0').start()
    return {
      url: container.getConnectionUrl(),
      kind: 'container',
      stop: async () => void (await container.stop()),
    }
  }
  return startLocalRedis()
}
