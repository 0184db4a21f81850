import { eventually, loadAndLengths } from '@hedgeyard/testing/helpers'
import { startLocalRedis } from '@hedgeyard/testing/redis-server'
import { Dispatcher, isHedgeyardError, poolKeys, startWorkers } from 'hedgeyard'
import { queueKey } from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterAll(async () => {
  for (const f of cleanups.reverse()) await f()
})

describe('Redis restart', () => {
  it('with AOF everysec, a crash loses no job dispatched more than a second before; everyone reconnects and every submit completes', async () => {
    const redis = await startLocalRedis(['--appendonly', 'yes', '--appendfsync', 'everysec'])
    cleanups.push(() => redis.stop())
    const pool = 'restart'
    const keys = poolKeys('hy', pool)
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    const group = await startWorkers({
      redis: redis.url,
      pool,
      concurrency: 4,
      queueCapacity: 500,
      leaseMs: 10_000,
      blockMs: 500,
      handler: async (req: unknown) => {
        await gate
        return req
      },
    })
    cleanups.push(() => group.close())
    const d = new Dispatcher<number, number>({ redis: redis.url, pool })
    cleanups.push(() => d.close())
    const submits = Array.from({ length: 200 }, (_, n) => d.submit(n, { timeoutMs: 60_000 }))

    const c = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 50 })
    c.on('error', () => {})
    cleanups.push(() => c.disconnect())
    const streamKey = queueKey(keys, group.workerIds[0] as string)
    await eventually(async () => (await c.xlen(streamKey)) === 200)
    await new Promise((r) => setTimeout(r, 1_500))

    await redis.restart('SIGKILL')
    expect(await c.xlen(streamKey)).toBe(200)
    expect(await loadAndLengths(c, pool)).toEqual([{ workerId: group.workerIds[0], load: 200, xlen: 200 }])

    // While Redis was away nothing failed for good; once the handlers may finish, all 200 answer.
    release()
    const results = await Promise.all(submits)
    expect(results).toEqual(Array.from({ length: 200 }, (_, n) => n))
    // New submits work on the same dispatcher and workers: scripts reloaded, reads resumed.
    expect(await d.submit(1_000)).toBe(1_000)
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
  })

  it('pending submits end with TIMEOUT, not a hang, when Redis stays away', async () => {
    const redis = await startLocalRedis()
    cleanups.push(() => redis.stop())
    const group = await startWorkers({
      redis: redis.url,
      pool: 'away',
      handler: async () => new Promise(() => {}),
      drainTimeoutMs: 100,
    })
    cleanups.push(() => group.close())
    const d = new Dispatcher({ redis: redis.url, pool: 'away' })
    cleanups.push(() => d.close())
    const pending = d.submit(1, { timeoutMs: 1_500 }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 200))
    await redis.stop()
    const err = await pending
    expect(isHedgeyardError(err, 'TIMEOUT')).toBe(true)
    const fresh = await d.submit(2, { timeoutMs: 1_000 }).catch((e: unknown) => e)
    expect(isHedgeyardError(fresh, 'REDIS_UNAVAILABLE')).toBe(true)
  })
})
