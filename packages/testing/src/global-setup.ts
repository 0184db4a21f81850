import type { TestProject } from 'vitest/node'
import { startRedisCluster } from './redis-cluster.js'
import { startTestRedis } from './redis-server.js'
import { isClusterRun } from './test-redis-kind.js'

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string
  }
}

/**
 * The Redis of the run: one server, or, with `HEDGEYARD_TEST_REDIS=cluster`, a local cluster of 3
 * primaries and 3 replicas whose `redis+cluster://` URL `redisUrl()` then gives every test.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const redis = isClusterRun ? await startRedisCluster() : await startTestRedis()
  project.provide('redisUrl', redis.url)
  return () => redis.stop()
}
