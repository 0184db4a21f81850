import { client, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { startWorkers } from '../consumer/start-workers.js'
import { Dispatcher } from '../producer/dispatcher.js'
import { poolKeys } from '../protocol/keys.js'
import { setPoolLimits } from './pool-limits.js'
import { openPoolView } from './pool-view.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

describe('openPoolView', () => {
  it('shows the workers, the producers with their latencies, dead letters and quotas in one snapshot', async () => {
    const pool = uniquePool('view')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 3,
      concurrency: 2,
      handler: async (req: { ms: number }) => {
        await new Promise((r) => setTimeout(r, req.ms))
        return 'ok'
      },
    })
    closers.push(() => group.close())
    await setPoolLimits({ redis: redisUrl(), pool }, { rate: { limit: 1000, periodMs: 1000, burst: 50 } })
    await c.xadd(poolKeys('hy', pool).dead, '*', 'id', 'j1', 'reason', 'MAX_ATTEMPTS')
    const d = new Dispatcher({ redis: redisUrl(), pool })
    await Promise.all(Array.from({ length: 20 }, (_, i) => d.submit({ ms: i === 0 ? 200 : 5 })))
    await d.close() // reports its counters on the way out

    const view = await openPoolView({ redis: redisUrl(), pool })
    closers.push(() => view.close())
    const snap = await view.snapshot()
    expect(snap.pool).toBe(pool)
    expect(Math.abs(snap.at - Date.now())).toBeLessThan(5_000)
    expect(snap.workers.map((w) => w.workerId)).toEqual([...group.workerIds].sort())
    expect(snap.workers.every((w) => w.alive && w.state === 'active' && w.concurrency === 2)).toBe(true)
    expect(snap.workers.reduce((n, w) => n + w.processed, 0)).toBe(20)
    expect(snap.producers).toHaveLength(1)
    const [producer] = snap.producers
    expect(producer?.producerId).toBe(d.producerId)
    expect(producer?.succeeded).toBe(20)
    expect(producer?.latencyP50Ms).toBeGreaterThanOrEqual(5)
    expect(producer?.latencyP50Ms).toBeLessThan(200)
    expect(producer?.latencyP99Ms).toBeGreaterThanOrEqual(200)
    expect(snap.deadLetters).toBe(1)
    expect(snap.limits).toEqual({ rate: { limit: 1000, periodMs: 1000, burst: 50 } })
  })

  it('reads an empty pool as empty, and fails with REDIS_UNAVAILABLE on a closed port', async () => {
    const view = await openPoolView({ redis: redisUrl(), pool: uniquePool('view-empty') })
    closers.push(() => view.close())
    const snap = await view.snapshot()
    expect(snap).toMatchObject({ workers: [], producers: [], deadLetters: 0, limits: {} })
    await expect(openPoolView({ redis: 'redis://127.0.0.1:1', pool: 'p' })).rejects.toMatchObject({
      code: 'REDIS_UNAVAILABLE',
    })
  })
})
