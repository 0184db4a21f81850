import { redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterEach, describe, expect, it } from 'vitest'
import { startWorkers } from '../index.js'
import { isHedgeyardError } from '../protocol/errors.js'
import { Dispatcher } from './dispatcher.js'

const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe('adaptive throttling in the producer', () => {
  it('sheds most requests while the upstream fails, lets a trickle through, and stops once it serves again', async () => {
    const pool = uniquePool('throttle')
    let isDown = true
    let reached = 0
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      concurrency: 50,
      // The breaker would take the failing worker out of dispatch: this test is about the producer.
      breaker: false,
      handler: () => {
        reached++
        if (isDown) throw Object.assign(new Error('upstream unavailable'), { status: 503, retryable: true })
        return 'ok'
      },
    })
    closers.push(() => group.close())
    const d = new Dispatcher({ redis: redisUrl(), pool, throttle: { windowMs: 2_000, minRequests: 10 } })
    closers.push(() => d.close())
    const codes: string[] = []
    for (let round = 0; round < 20; round++) {
      const outcomes = await Promise.allSettled(Array.from({ length: 10 }, () => d.submit({})))
      for (const o of outcomes) {
        codes.push(o.status === 'fulfilled' ? 'ok' : isHedgeyardError(o.reason) ? o.reason.code : 'other')
      }
    }
    const shed = codes.filter((c) => c === 'THROTTLED').length
    // 200 requests into a dead upstream: most stop here, and the upstream sees few of them.
    expect(shed).toBeGreaterThan(100)
    expect(reached).toBeLessThan(100)
    expect(codes.filter((c) => c === 'HANDLER_ERROR').length).toBe(reached)
    expect(d.stats().throttled).toBe(shed)
    // The upstream is back: once its failures leave the window, nothing is shed.
    isDown = false
    await new Promise((r) => setTimeout(r, 2_200))
    const after = await Promise.allSettled(Array.from({ length: 30 }, () => d.submit({})))
    expect(after.every((o) => o.status === 'fulfilled')).toBe(true)
    expect(d.stats().throttled).toBe(shed)
  })

  it('can be turned off, and refuses bad settings naming them', async () => {
    expect(() => new Dispatcher({ redis: redisUrl(), pool: 'p', throttle: { k: 0 } })).toThrow(/throttle\.k/)
    expect(() => new Dispatcher({ redis: redisUrl(), pool: 'p', throttle: { kk: 2 } as never })).toThrow(/kk/)
    const d = new Dispatcher({ redis: redisUrl(), pool: 'p', throttle: false })
    await d.close()
  })
})
