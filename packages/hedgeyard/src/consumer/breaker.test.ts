import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { inspectPool } from '../admin/inspect-pool.js'
import { startWorkers } from '../index.js'
import { Dispatcher } from '../producer/dispatcher.js'
import { poolKeys } from '../protocol/keys.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

describe("a worker's breaker", () => {
  it('opens after consecutive failures, lets one probe in after the cool-off, and closes on its success', async () => {
    const pool = uniquePool('breaker')
    const keys = poolKeys('hy', pool)
    const ref = { redis: redisUrl(), pool }
    let isDown = true
    let reached = 0
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      idPrefix: 'flaky',
      leaseMs: 600,
      concurrency: 4,
      breaker: { failures: 3, coolOffMs: 800 },
      handler: () => {
        reached++
        if (isDown) throw Object.assign(new Error('upstream unavailable'), { retryable: true })
        return 'ok'
      },
    })
    closers.push(() => group.close())
    const d = new Dispatcher({ redis: redisUrl(), pool, throttle: false })
    closers.push(() => d.close())
    for (let i = 0; i < 3; i++) await expect(d.submit({})).rejects.toMatchObject({ code: 'HANDLER_ERROR' })
    const [open] = await inspectPool(ref)
    expect(open).toMatchObject({ breaker: 'open', consecutiveFailures: 3 })
    expect(open?.breakerMs).toBeGreaterThan(0)
    // Open: out of dispatch, the upstream is left alone.
    await expect(d.submit({})).rejects.toMatchObject({ code: 'SATURATED' })
    expect(reached).toBe(3)
    // After the cool-off a heartbeat half-opens it: one probe; it fails, and the breaker opens again.
    await eventually(async () => (await inspectPool(ref))[0]?.breaker === 'half-open', 5_000)
    await expect(d.submit({}, { onSaturated: 'wait', timeoutMs: 5_000 })).rejects.toMatchObject({
      code: 'HANDLER_ERROR',
    })
    expect(reached).toBe(4)
    expect((await inspectPool(ref))[0]).toMatchObject({ breaker: 'open', consecutiveFailures: 4 })
    // The upstream is back: the next probe succeeds and closes it; the worker takes jobs in parallel again.
    isDown = false
    await eventually(async () => (await inspectPool(ref))[0]?.breaker === 'half-open', 5_000)
    // Half-open, it takes one job at a time: a second one finds no room.
    const probe = d.submit({})
    await expect(d.submit({})).rejects.toMatchObject({ code: 'SATURATED' })
    expect(await probe).toBe('ok')
    expect((await inspectPool(ref))[0]).toMatchObject({ breaker: 'closed', consecutiveFailures: 0 })
    expect(await c.zscore(keys.ready, 'flaky-1')).not.toBeNull()
    expect(await Promise.all(Array.from({ length: 4 }, () => d.submit({})))).toEqual(Array(4).fill('ok'))
  })
})
