import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { inspectPool } from '../admin/inspect-pool.js'
import { type Handler, startWorkers } from '../index.js'
import { Dispatcher } from '../producer/dispatcher.js'
import { affinityKey, poolKeys } from '../protocol/keys.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

/** Worker `limited-1` answers `{ limit: true }` as an upstream 429 would; every worker echoes the rest. */
const handler: Handler = (req, ctx) => {
  if ((req as { limit?: boolean }).limit && ctx.workerId === 'limited-1') {
    throw Object.assign(new Error('quota exceeded upstream'), { status: 429, retryAfterMs: 1_500 })
  }
  return ctx.workerId
}

async function group(pool: string, idPrefix: string) {
  const g = await startWorkers({ redis: redisUrl(), pool, handler, idPrefix, leaseMs: 600 })
  closers.push(() => g.close())
  return g
}

describe('a worker whose upstream answers 429', () => {
  it('leaves dispatch for the delay, its sessions move elsewhere, and it comes back after', async () => {
    const pool = uniquePool('cooldown')
    const keys = poolKeys('hy', pool)
    const ref = { redis: redisUrl(), pool }
    await group(pool, 'limited')
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    expect(await d.submit({}, { session: 'chat' })).toBe('limited-1')
    const err = await d.submit({ limit: true }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 1_500, isRetryable: true })
    expect((err as Error).message).toBe('Error: quota exceeded upstream')
    const [cooling] = await inspectPool(ref)
    expect(cooling).toMatchObject({ workerId: 'limited-1', state: 'cooling', alive: true })
    expect(cooling?.coolingMs).toBeGreaterThan(500)
    // Alive but out of dispatch: nothing has room.
    await expect(d.submit({})).rejects.toMatchObject({ code: 'SATURATED' })
    // Another worker takes the session's requests, and the session is bound to it.
    await group(pool, 'spare')
    expect(await d.submit({}, { session: 'chat' })).toBe('spare-1')
    expect(await c.get(affinityKey(keys, 'chat'))).toBe('spare-1')
    // A retried request goes to the other worker.
    expect(await d.submit({ limit: true }, { retry: { maxAttempts: 2, backoffMs: 0 } })).toBe('spare-1')
    // Once the delay has passed, its next heartbeat makes it a candidate again.
    await eventually(async () => (await c.zscore(keys.ready, 'limited-1')) !== null, 5_000)
    expect((await inspectPool(ref)).find((w) => w.workerId === 'limited-1')).toMatchObject({
      state: 'active',
      coolingMs: 0,
    })
    const seen = new Set(await Promise.all(Array.from({ length: 20 }, () => d.submit({}))))
    expect(seen.has('limited-1')).toBe(true)
  })
})
