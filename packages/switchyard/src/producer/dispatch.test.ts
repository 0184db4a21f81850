import { afterAll, afterEach, describe, expect, it } from 'vitest'
import {
  cleanupPool,
  client,
  loadAndLengths,
  redisUrl,
  uniquePool,
} from '../../../../test/harness/helpers.js'
import { isSwitchyardError } from '../protocol/errors.js'
import { expireLease, fakeWorkers, queueLengths } from '../test-support/fake-pool.js'
import { Dispatcher } from './dispatcher.js'

const c = client()
const opened: { close(): Promise<void> | void }[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close()
})
afterAll(() => c.disconnect())

function dispatcher(pool: string, extra: { affinityTtlMs?: number } = {}): Dispatcher {
  const d = new Dispatcher({ redis: redisUrl(), pool, ...extra })
  opened.push(d)
  return d
}

/** Submits to a pool of workers that never answer; the job stays queued where dispatch put it. */
async function submitUnanswered(d: Dispatcher, req: unknown, session?: string): Promise<void> {
  await d.submit(req, { timeoutMs: 50, ...(session ? { session } : {}) }).catch((err: unknown) => {
    if (!isSwitchyardError(err, 'TIMEOUT')) throw err
  })
}

async function useFakes(
  pool: string,
  loads: Record<string, number>,
  options?: { capacity?: number; leaseMs?: number },
) {
  const conn = await fakeWorkers(redisUrl(), pool, loads, options)
  opened.push({ close: () => conn.disconnect() })
  return conn
}

describe('least-loaded dispatch', () => {
  it('sends each job to the worker with the lowest load under skewed loads', async () => {
    const pool = uniquePool('skew')
    await useFakes(pool, { a: 5, b: 2, c: 7, d: 4 })
    const d = dispatcher(pool)
    await submitUnanswered(d, 1)
    expect(await queueLengths(c, pool, ['a', 'b', 'c', 'd'])).toEqual({ a: 5, b: 3, c: 7, d: 4 })
    // b (3) is still the least loaded, then b and d tie at 4.
    await submitUnanswered(d, 2)
    await submitUnanswered(d, 3)
    const after = (await queueLengths(c, pool, ['a', 'b', 'c', 'd'])) as Record<'a' | 'b' | 'c' | 'd', number>
    expect(after.a).toBe(5)
    expect(after.c).toBe(7)
    expect(after.b + after.d).toBe(9)
    expect(Math.max(after.b, after.d)).toBe(5)
    for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    await cleanupPool(c, pool)
  })

  it('spreads ties over idle workers instead of piling on the first', async () => {
    const pool = uniquePool('ties')
    const ids = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8']
    await useFakes(pool, Object.fromEntries(ids.map((id) => [id, 0])))
    const d = dispatcher(pool)
    // One job at a time, each followed by resetting that worker's load: every dispatch sees eight tied idle workers.
    const hits: Record<string, number> = {}
    for (let i = 0; i < 80; i++) {
      await submitUnanswered(d, i)
      const lengths = await queueLengths(c, pool, ids)
      const chosen = ids.find((id) => lengths[id] === 1) as string
      hits[chosen] = (hits[chosen] ?? 0) + 1
      await c.del(`sy:{${pool}}:q:${chosen}`)
      await c.xgroup('CREATE', `sy:{${pool}}:q:${chosen}`, 'sy', '0', 'MKSTREAM')
      await c.zadd(`sy:{${pool}}:load`, 0, chosen)
      await c.zadd(`sy:{${pool}}:ready`, 0, chosen)
    }
    // Uniform over 8 would give 10 each; the first-worker bug gives 80 to one.
    expect(Object.keys(hits).length).toBeGreaterThanOrEqual(6)
    expect(Math.max(...Object.values(hits))).toBeLessThan(30)
    await cleanupPool(c, pool)
  })

  it('never chooses a worker whose lease expired, and reports NO_WORKERS when none is alive', async () => {
    const pool = uniquePool('dead')
    await useFakes(pool, { live: 9, dead: 0 })
    await expireLease(c, pool, 'dead')
    const d = dispatcher(pool)
    await submitUnanswered(d, 1)
    expect(await queueLengths(c, pool, ['live', 'dead'])).toEqual({ live: 10, dead: 0 })
    await expireLease(c, pool, 'live')
    const err = await d.submit(1, { timeoutMs: 1000 }).catch((e: unknown) => e)
    expect(isSwitchyardError(err, 'NO_WORKERS')).toBe(true)
    await cleanupPool(c, pool)
  })
})

describe('capacity', () => {
  it('fails with SATURATED when every worker is full and leaves Redis unchanged', async () => {
    const pool = uniquePool('full')
    await useFakes(pool, { a: 2, b: 2 }, { capacity: 2 })
    const d = dispatcher(pool)
    const err = await d.submit({ x: 1 }, { timeoutMs: 1000 }).catch((e: unknown) => e)
    expect(isSwitchyardError(err, 'SATURATED')).toBe(true)
    expect((err as Error).message).toMatch(/at capacity/)
    expect(await queueLengths(c, pool, ['a', 'b'])).toEqual({ a: 2, b: 2 })
    expect(await c.zscore(`sy:{${pool}}:load`, 'a')).toBe('2')
    await cleanupPool(c, pool)
  })

  it("with onSaturated 'wait' retries until a worker has room", async () => {
    const pool = uniquePool('wait')
    await useFakes(pool, { a: 1 }, { capacity: 1 })
    const d = dispatcher(pool)
    const pending = d.submit({ x: 1 }, { timeoutMs: 3000, onSaturated: 'wait' }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 200))
    expect(await c.xlen(`sy:{${pool}}:q:a`)).toBe(1)
    // Free the slot the way a completion does: drop the entry and release the load.
    const [[id]] = (await c.xrange(`sy:{${pool}}:q:a`, '-', '+')) as unknown as [[string]]
    await c.xdel(`sy:{${pool}}:q:a`, id)
    await c.zadd(`sy:{${pool}}:load`, 0, 'a')
    await c.zadd(`sy:{${pool}}:ready`, 0, 'a')
    await new Promise((r) => setTimeout(r, 400))
    expect(await c.xlen(`sy:{${pool}}:q:a`)).toBe(1)
    const [[, fields]] = (await c.xrange(`sy:{${pool}}:q:a`, '-', '+')) as unknown as [[string, string[]]]
    expect(fields[3]).toBe('{"x":1}')
    const err = await pending
    expect(isSwitchyardError(err, 'TIMEOUT')).toBe(true)
    await cleanupPool(c, pool)
  })

  it("with onSaturated 'wait' gives up with SATURATED at the timeout", async () => {
    const pool = uniquePool('waitout')
    await useFakes(pool, { a: 1 }, { capacity: 1 })
    const d = dispatcher(pool)
    const startedAt = Date.now()
    const err = await d.submit(1, { timeoutMs: 300, onSaturated: 'wait' }).catch((e: unknown) => e)
    expect(isSwitchyardError(err, 'SATURATED')).toBe(true)
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(150)
    await cleanupPool(c, pool)
  })
})

describe('session affinity', () => {
  it('keeps a session on its worker while the binding lives, with a sliding TTL', async () => {
    const pool = uniquePool('aff')
    await useFakes(pool, { a: 0, b: 0, c: 0 })
    const d = dispatcher(pool, { affinityTtlMs: 2_000 })
    for (let i = 0; i < 6; i++) await submitUnanswered(d, i, 'chat-1')
    const lengths = await queueLengths(c, pool, ['a', 'b', 'c'])
    expect(Object.values(lengths).sort()).toEqual([0, 0, 6])
    const bound = await c.get(`sy:{${pool}}:aff:chat-1`)
    expect(lengths[bound as string]).toBe(6)
    const ttl = await c.pttl(`sy:{${pool}}:aff:chat-1`)
    expect(ttl).toBeGreaterThan(1_000)
    expect(ttl).toBeLessThanOrEqual(2_000)
    expect(d.stats()).toMatchObject({ affinityHits: 5, affinityMisses: 1 })
    await cleanupPool(c, pool)
  })

  it('rebinds after the binding expires', async () => {
    const pool = uniquePool('affttl')
    await useFakes(pool, { a: 0, b: 0 })
    const d = dispatcher(pool, { affinityTtlMs: 100 })
    await submitUnanswered(d, 1, 's')
    const first = await c.get(`sy:{${pool}}:aff:s`)
    await new Promise((r) => setTimeout(r, 250))
    expect(await c.exists(`sy:{${pool}}:aff:s`)).toBe(0)
    // The first worker now has load 1, so an unbound session goes to the other one.
    await submitUnanswered(d, 2, 's')
    const second = await c.get(`sy:{${pool}}:aff:s`)
    expect(second).not.toBe(first)
    expect(d.stats().affinityHits).toBe(0)
    await cleanupPool(c, pool)
  })

  it('rebinds a session whose worker died or is full', async () => {
    const pool = uniquePool('affrebind')
    await useFakes(pool, { a: 0, b: 0, c: 0 }, { capacity: 3 })
    const d = dispatcher(pool)
    await submitUnanswered(d, 1, 's')
    const first = (await c.get(`sy:{${pool}}:aff:s`)) as string
    await expireLease(c, pool, first)
    await submitUnanswered(d, 2, 's')
    const second = (await c.get(`sy:{${pool}}:aff:s`)) as string
    expect(second).not.toBe(first)
    // Fill the second worker to capacity: the session moves again rather than failing.
    await submitUnanswered(d, 3, 's')
    await submitUnanswered(d, 4, 's')
    expect(await c.xlen(`sy:{${pool}}:q:${second}`)).toBe(3)
    await submitUnanswered(d, 5, 's')
    const third = (await c.get(`sy:{${pool}}:aff:s`)) as string
    expect([first, second]).not.toContain(third)
    expect(await c.xlen(`sy:{${pool}}:q:${third}`)).toBe(1)
    await cleanupPool(c, pool)
  })
})
