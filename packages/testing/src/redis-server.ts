import { execFileSync } from 'node:child_process'
import { freePort, type RedisServer, startRedisServer } from '@hedgeyard/redis-server'

export { freePort }

/** A Redis server for tests: its URL and a way to stop it. */
export interface TestRedis {
  url: string
  /** How it was provided: REDIS_URL, a testcontainers container, or a local redis-server process. */
  kind: 'env' | 'container' | 'local'
  stop(): Promise<void>
}

function hasDockerEngine(): boolean {
  try {
    execFileSync('docker', ['info', '--format', '{{.ServerVersion}}'], { stdio: 'ignore', timeout: 5_000 })
    return true
  } catch {
    return false
  }
}

/** A local redis-server process of the test's own, that the test can restart. */
export type LocalRedis = RedisServer & { kind: 'local' }

/** A local redis-server process on a free port, with its own data directory (the shared launcher). */
export async function startLocalRedis(extraArgs: string[] = []): Promise<LocalRedis> {
  const server = await startRedisServer({ args: extraArgs })
  return Object.assign(server, { kind: 'local' as const })
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
