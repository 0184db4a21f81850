import {
  expireLease,
  fakeWorkers,
  plainDispatchItem,
  queueLengths,
  READY_SCALE,
} from '@hedgeyard/testing/fake-pool'
import { cleanupPool, client, loadAndLengths, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { isHedgeyardError } from '../protocol/errors.js'
import { affinityKey, CONSUMER_GROUP, poolKeys, queueKey, workerKey } from '../protocol/keys.js'
import { connectReady, createConnection } from '../redis/connection.js'
import { DispatchBatcher } from './dispatch-batcher.js'
import { Dispatcher } from './dispatcher.js'

const c = client()
const opened: { close(): Promise<void> | void }[] = []
afterEach(async () => {
  for (const o of opened.splice(0)) await o.close()
})
afterAll(() => c.disconnect())

function dispatcher(pool: string, extra: { affinityTtlMs?: number } = {}): Dispatcher {
  // Jobs on fake workers are never answered: every submit here ends in TIMEOUT on purpose, which
  // the adaptive throttle would take for an outage.
  const d = new Dispatcher({ redis: redisUrl(), pool, throttle: false, ...extra })
  opened.push(d)
  return d
}

/** Submits to a pool of workers that never answer; the job stays queued where dispatch put it. */
async function submitUnanswered(d: Dispatcher, req: unknown, session?: string): Promise<void> {
  await d.submit(req, { timeoutMs: 50, ...(session ? { session } : {}) }).catch((err: unknown) => {
    if (!isHedgeyardError(err, 'TIMEOUT')) throw err
  })
}

async function useFakes(
  pool: string,
  loads: Record<string, number>,
  options?: Parameters<typeof fakeWorkers>[3],
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
    const keys = poolKeys('hy', pool)
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
      await c.del(queueKey(keys, chosen))
      await c.xgroup('CREATE', queueKey(keys, chosen), CONSUMER_GROUP, '0', 'MKSTREAM')
      await c.zadd(keys.load, 0, chosen)
      await c.zadd(keys.ready, 0, chosen)
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
    expect(isHedgeyardError(err, 'NO_WORKERS')).toBe(true)
    await cleanupPool(c, pool)
  })
})

describe('capacity', () => {
  it('fails with SATURATED when every worker is full and leaves Redis unchanged', async () => {
    const pool = uniquePool('full')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { a: 2, b: 2 }, { capacity: 2 })
    const d = dispatcher(pool)
    const err = await d.submit({ x: 1 }, { timeoutMs: 1000 }).catch((e: unknown) => e)
    expect(isHedgeyardError(err, 'SATURATED')).toBe(true)
    expect((err as Error).message).toMatch(/at capacity/)
    expect(await queueLengths(c, pool, ['a', 'b'])).toEqual({ a: 2, b: 2 })
    expect(await c.zscore(keys.load, 'a')).toBe('2')
    await cleanupPool(c, pool)
  })

  it("with onSaturated 'wait' retries until a worker has room", async () => {
    const pool = uniquePool('wait')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { a: 1 }, { capacity: 1 })
    const d = dispatcher(pool)
    const pending = d.submit({ x: 1 }, { timeoutMs: 3000, onSaturated: 'wait' }).catch((e: unknown) => e)
    await new Promise((r) => setTimeout(r, 200))
    expect(await c.xlen(queueKey(keys, 'a'))).toBe(1)
    // Free the slot the way a completion does: drop the entry and release the load.
    const [[id]] = (await c.xrange(queueKey(keys, 'a'), '-', '+')) as unknown as [[string]]
    await c.xdel(queueKey(keys, 'a'), id)
    await c.zadd(keys.load, 0, 'a')
    await c.zadd(keys.ready, 0, 'a')
    await new Promise((r) => setTimeout(r, 400))
    expect(await c.xlen(queueKey(keys, 'a'))).toBe(1)
    const [[, fields]] = (await c.xrange(queueKey(keys, 'a'), '-', '+')) as unknown as [[string, string[]]]
    expect(fields[3]).toBe('{"x":1}')
    const err = await pending
    expect(isHedgeyardError(err, 'TIMEOUT')).toBe(true)
    await cleanupPool(c, pool)
  })

  it("with onSaturated 'wait' gives up with SATURATED at the timeout", async () => {
    const pool = uniquePool('waitout')
    await useFakes(pool, { a: 1 }, { capacity: 1 })
    const d = dispatcher(pool)
    const startedAt = Date.now()
    const err = await d.submit(1, { timeoutMs: 300, onSaturated: 'wait' }).catch((e: unknown) => e)
    expect(isHedgeyardError(err, 'SATURATED')).toBe(true)
    // It kept trying instead of failing at once: it stops when the next jittered delay would pass
    // the deadline, which with 300 ms can be as early as about 140 ms (5+10+20+40+80 ms at half
    // jitter, then a 160 ms delay that would overshoot).
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(100)
    await cleanupPool(c, pool)
  })

  it("with onSaturated 'wait' fails with SATURATED, not TIMEOUT, when its deadline passes while it waits", async () => {
    const pool = uniquePool('waitstall')
    await useFakes(pool, { a: 1 }, { capacity: 1 })
    const d = dispatcher(pool)
    const err = d.submit(1, { timeoutMs: 300, onSaturated: 'wait' }).catch((e: unknown) => e)
    while (d.stats().saturated === 0) await new Promise((r) => setTimeout(r, 1))
    // The process stalls past the deadline (a long GC, a loaded host): the next try and the
    // deadline come due together. The job never reached a worker, so the pool's refusal is the answer.
    const until = Date.now() + 400
    while (Date.now() < until) {}
    expect(isHedgeyardError(await err, 'SATURATED')).toBe(true)
    await cleanupPool(c, pool)
  })
})

describe('session affinity', () => {
  it('keeps a session on its worker while the binding lives, with a sliding TTL', async () => {
    const pool = uniquePool('aff')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { a: 0, b: 0, c: 0 })
    const d = dispatcher(pool, { affinityTtlMs: 2_000 })
    for (let i = 0; i < 6; i++) await submitUnanswered(d, i, 'chat-1')
    const lengths = await queueLengths(c, pool, ['a', 'b', 'c'])
    expect(Object.values(lengths).sort()).toEqual([0, 0, 6])
    const bound = await c.get(affinityKey(keys, 'chat-1'))
    expect(lengths[bound as string]).toBe(6)
    const ttl = await c.pttl(affinityKey(keys, 'chat-1'))
    expect(ttl).toBeGreaterThan(1_000)
    expect(ttl).toBeLessThanOrEqual(2_000)
    expect(d.stats()).toMatchObject({ affinityHits: 5, affinityMisses: 1 })
    await cleanupPool(c, pool)
  })

  it('rebinds after the binding expires', async () => {
    const pool = uniquePool('affttl')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { a: 0, b: 0 })
    const d = dispatcher(pool, { affinityTtlMs: 100 })
    await submitUnanswered(d, 1, 's')
    const first = await c.get(affinityKey(keys, 's'))
    await new Promise((r) => setTimeout(r, 250))
    expect(await c.exists(affinityKey(keys, 's'))).toBe(0)
    // The first worker now has load 1, so an unbound session goes to the other one.
    await submitUnanswered(d, 2, 's')
    const second = await c.get(affinityKey(keys, 's'))
    expect(second).not.toBe(first)
    expect(d.stats().affinityHits).toBe(0)
    await cleanupPool(c, pool)
  })

  it('rebinds a session whose worker died or is full', async () => {
    const pool = uniquePool('affrebind')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { a: 0, b: 0, c: 0 }, { capacity: 3 })
    const d = dispatcher(pool)
    await submitUnanswered(d, 1, 's')
    const first = (await c.get(affinityKey(keys, 's'))) as string
    await expireLease(c, pool, first)
    await submitUnanswered(d, 2, 's')
    const second = (await c.get(affinityKey(keys, 's'))) as string
    expect(second).not.toBe(first)
    // Fill the second worker to capacity: the session moves again rather than failing.
    await submitUnanswered(d, 3, 's')
    await submitUnanswered(d, 4, 's')
    expect(await c.xlen(queueKey(keys, second))).toBe(3)
    await submitUnanswered(d, 5, 's')
    const third = (await c.get(affinityKey(keys, 's'))) as string
    expect([first, second]).not.toContain(third)
    expect(await c.xlen(queueKey(keys, third))).toBe(1)
    await cleanupPool(c, pool)
  })
})

describe('batches', () => {
  /**
   * Dispatches `n` plain jobs in one turn of the event loop, so they travel in one dispatch call,
   * as a burst of submits does; resolves with each job's status ('queued' or the script's answer).
   */
  async function submitBatch(pool: string, n: number): Promise<string[]> {
    const { batcher } = await batcherOf(pool)
    const outcomes = await Promise.all(Array.from({ length: n }, (_, i) => batcher.dispatch(plainJob(i))))
    return outcomes.map((o) => (o.status === 'queued' ? 'queued' : o.status))
  }

  /** A dispatch batcher of its own connection, for `pool`. */
  async function batcherOf(pool: string) {
    const conn = createConnection(redisUrl(), 'command', 'hy:test-batch')
    opened.push({ close: () => conn.disconnect() })
    await connectReady(conn, 10_000)
    return {
      conn,
      batcher: new DispatchBatcher(conn, poolKeys('hy', pool), 'test-producer', 30_000, undefined),
    }
  }

  /** Plain job `i`, first attempt. */
  function plainJob(i: number) {
    return plainDispatchItem(`job-${i}`, String(i))
  }

  it('sends each full call of 256 jobs at once, while the caller is still submitting in the same turn', async () => {
    const pool = uniquePool('batchearly')
    await useFakes(pool, { a: 0 }, { capacity: 1_000 })
    const { conn, batcher } = await batcherOf(pool)
    // The script calls made, counted as they leave (the calls still go to Redis).
    const sent: number[] = []
    const call = conn.dispatch.bind(conn)
    conn.dispatch = (...args: (string | number)[]) => {
      sent.push(args.length)
      return call(...args)
    }
    const outcomes: Promise<unknown>[] = []
    const callsMadeAt: number[] = []
    for (let i = 0; i < 600; i++) {
      outcomes.push(batcher.dispatch(plainJob(i)))
      callsMadeAt.push(sent.length)
    }
    // Still in the submitting turn: two full calls have gone, the rest goes when the turn ends.
    expect(callsMadeAt[254]).toBe(0)
    expect(callsMadeAt[255]).toBe(1)
    expect(callsMadeAt[599]).toBe(2)
    const placed = await Promise.all(outcomes)
    expect(sent).toHaveLength(3)
    expect(placed.every((o) => (o as { status: string }).status === 'queued')).toBe(true)
    await cleanupPool(c, pool)
  })

  it('places a batch exactly as one-at-a-time least-loaded picks would, up to capacity', async () => {
    const pool = uniquePool('batchfill')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { a: 0, b: 2, c: 5 }, { capacity: 6 })
    expect(await submitBatch(pool, 10)).toEqual(Array(10).fill('queued'))
    // a takes the first two, then a and b rise together to 5, then two of the three tied at 5 get one each.
    const lengths = await queueLengths(c, pool, ['a', 'b', 'c'])
    expect(Object.values(lengths).sort()).toEqual([5, 6, 6])
    expect(lengths.a).toBeGreaterThanOrEqual(5)
    expect(lengths.b).toBeGreaterThanOrEqual(5)
    // One slot is left in the pool: one job of the next batch is queued, the others are SATURATED.
    expect((await submitBatch(pool, 5)).sort()).toEqual([
      'SATURATED',
      'SATURATED',
      'SATURATED',
      'SATURATED',
      'queued',
    ])
    for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    expect(await c.zcard(keys.ready)).toBe(0)
    await cleanupPool(c, pool)
  })

  it('places a batch by utilisation: 16 jobs split 14 / 2 between concurrency 8 and 1', async () => {
    const pool = uniquePool('batchutil')
    await useFakes(pool, { big: 0, small: 0 }, { concurrency: { big: 8, small: 1 } })
    expect(await submitBatch(pool, 16)).toEqual(Array(16).fill('queued'))
    // 16 jobs of 1 s: both done in 2 s, where 8 / 8 leaves the small worker busy for 8 s.
    expect(await queueLengths(c, pool, ['big', 'small'])).toEqual({ big: 14, small: 2 })
    for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    await cleanupPool(c, pool)
  })

  it('spreads a batch over tied idle workers at random, one job each', async () => {
    const ids = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8']
    const hits: Record<string, number> = {}
    for (let round = 0; round < 20; round++) {
      const pool = uniquePool('batchties')
      await useFakes(pool, Object.fromEntries(ids.map((id) => [id, 0])))
      await submitBatch(pool, 4)
      const lengths = await queueLengths(c, pool, ids)
      // Four jobs over eight idle workers: four distinct workers, one job each.
      expect(Object.values(lengths).sort()).toEqual([0, 0, 0, 0, 1, 1, 1, 1])
      for (const id of ids) hits[id] = (hits[id] ?? 0) + (lengths[id] ?? 0)
      for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
      await cleanupPool(c, pool)
    }
    // 80 jobs, 10 per worker on average; always the first four would give 20 to four of them.
    expect(Object.keys(hits).filter((id) => (hits[id] ?? 0) > 0)).toHaveLength(8)
    expect(Math.max(...Object.values(hits))).toBeLessThan(19)
  })

  it('picks a batch among many tied workers by random rank, and writes each chosen load', async () => {
    // 40 idle workers and 4 jobs: more than 4 x 4 tie, so the jobs go to random ranks of the level.
    const ids = Array.from({ length: 40 }, (_, i) => `w${i + 1}`)
    const hits = new Set<string>()
    for (let round = 0; round < 5; round++) {
      const pool = uniquePool('batchranks')
      const keys = poolKeys('hy', pool)
      await useFakes(pool, Object.fromEntries(ids.map((id) => [id, 0])))
      expect(await submitBatch(pool, 4)).toEqual(Array(4).fill('queued'))
      const lengths = await queueLengths(c, pool, ids)
      expect(Object.values(lengths).filter((n) => n > 0)).toEqual([1, 1, 1, 1])
      for (const id of ids) if ((lengths[id] ?? 0) > 0) hits.add(id)
      for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
      // `ready` keeps every worker, at its new load.
      expect(await c.zcount(keys.ready, READY_SCALE, READY_SCALE)).toBe(4)
      await cleanupPool(c, pool)
    }
    // 20 jobs over 40 workers: always the same four would give 4 distinct workers.
    expect(hits.size).toBeGreaterThan(4)
  })

  it('never places a job of a batch on a worker whose lease expired', async () => {
    const ids = ['w1', 'w2', 'w3', 'w4', 'w5', 'w6']
    for (let round = 0; round < 10; round++) {
      const pool = uniquePool('batchdead')
      await useFakes(pool, Object.fromEntries(ids.map((id) => [id, 0])))
      await expireLease(c, pool, 'w1')
      await expireLease(c, pool, 'w2')
      await submitBatch(pool, 4)
      expect(await queueLengths(c, pool, ids)).toEqual({ w1: 0, w2: 0, w3: 1, w4: 1, w5: 1, w6: 1 })
      await cleanupPool(c, pool)
    }
  })

  it('once a batch lifts its workers to the load of many others, it spreads over all of them', async () => {
    // The batch reads the k + 1 least-loaded workers; d and e tie with b and c at load 1 but sort after them.
    const ids = ['a', 'b', 'c', 'd', 'e']
    let beyond = 0
    for (let round = 0; round < 30; round++) {
      const pool = uniquePool('batchbeyond')
      await useFakes(pool, { a: 0, b: 1, c: 1, d: 1, e: 1 })
      await submitBatch(pool, 2)
      const lengths = await queueLengths(c, pool, ids)
      expect(lengths.a).toBeGreaterThanOrEqual(1)
      expect(Object.values(lengths).reduce((x, y) => x + y, 0)).toBe(6)
      beyond += (lengths.d ?? 0) + (lengths.e ?? 0) - 2
      for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
      await cleanupPool(c, pool)
    }
    // The second job is random over the five workers at load 1: d or e in 2 rounds of 5.
    expect(beyond).toBeGreaterThan(0)
  })
})

describe('placement by utilisation', () => {
  it('sends each job to a free slot first, then to the least queued work per slot', async () => {
    const pool = uniquePool('util')
    const keys = poolKeys('hy', pool)
    await useFakes(pool, { big: 0, small: 0 }, { concurrency: { big: 8, small: 1 } })
    const d = dispatcher(pool)
    for (let i = 0; i < 16; i++) await submitUnanswered(d, i)
    // Counting jobs would split them 8 / 8; by jobs per slot the big worker takes 14.
    expect(await queueLengths(c, pool, ['big', 'small'])).toEqual({ big: 14, small: 2 })
    // `ready` holds each worker's jobs per slot, in millionths.
    expect(await c.zscore(keys.ready, 'big')).toBe('1750000')
    expect(await c.zscore(keys.ready, 'small')).toBe('2000000')
    expect(await c.zscore(keys.load, 'big')).toBe('14')
    await cleanupPool(c, pool)
  })

  it('scores a worker whose hash holds no valid concurrency as concurrency 1, without failing', async () => {
    const keys = (pool: string) => poolKeys('hy', pool)
    for (const bad of ['nan', 'inf', '-3', '0', '1e3', '', '9'.repeat(20)]) {
      const pool = uniquePool('badconc')
      await useFakes(pool, { w: 0 }, { concurrency: { w: 8 } })
      await c.hset(workerKey(keys(pool), 'w'), 'concurrency', bad)
      const d = dispatcher(pool)
      await submitUnanswered(d, 1)
      await submitUnanswered(d, 2)
      expect(await c.zscore(keys(pool).ready, 'w')).toBe('2000000')
      await cleanupPool(c, pool)
    }
  })
})

describe('copies of a job', () => {
  /** Queues one retry copy of a job, excluding `exclude`; resolves with the worker it went to. */
  async function retryCopy(pool: string, jobId: string, exclude: string): Promise<string> {
    const conn = createConnection(redisUrl(), 'command', 'hy:test-copy')
    opened.push({ close: () => conn.disconnect() })
    await connectReady(conn, 10_000)
    const batcher = new DispatchBatcher(conn, poolKeys('hy', pool), 'test-producer', 30_000, undefined)
    const outcome = await batcher.dispatch({
      jobId,
      session: '',
      payload: '1',
      timeoutMs: 60_000,
      attempt: 2,
      maxAttempts: 3,
      exclude,
      race: 'h',
      copies: 1,
    })
    if (outcome.status !== 'queued') throw new Error(`not queued: ${outcome.status}`)
    return outcome.workerId
  }

  it('go to another host first, then to another process, then to a sibling of the slow worker', async () => {
    const pool = uniquePool('hosts')
    const keys = poolKeys('hy', pool)
    // slow-1 and slow-2 share a process on h1; near-1 is another process on h1; far-1 is on h2,
    // busier than the others.
    await useFakes(
      pool,
      { 'slow-1': 0, 'slow-2': 0, 'near-1': 0, 'far-1': 3 },
      { host: { 'slow-1': 'h1', 'slow-2': 'h1', 'near-1': 'h1', 'far-1': 'h2' } },
    )
    const targets: string[] = []
    for (let i = 0; i < 6; i++) targets.push(await retryCopy(pool, `job-${i}`, 'slow-1'))
    expect(targets).toEqual(Array(6).fill('far-1'))
    // Without another host, another process.
    await c.zrem(keys.ready, 'far-1')
    expect(await retryCopy(pool, 'job-near', 'slow-1')).toBe('near-1')
    // Without another process, the sibling: a copy that can run somewhere beats none.
    await c.zrem(keys.ready, 'near-1')
    expect(await retryCopy(pool, 'job-sibling', 'slow-1')).toBe('slow-2')
    await cleanupPool(c, pool)
  })

  it('take a worker whose host is unknown as one of the same host', async () => {
    const pool = uniquePool('nohost')
    await useFakes(
      pool,
      { 'slow-1': 0, 'near-1': 0, 'far-1': 0 },
      { host: { 'slow-1': 'h1', 'near-1': 'h1', 'far-1': 'h2' } },
    )
    await c.hdel(workerKey(poolKeys('hy', pool), 'far-1'), 'host')
    const targets = new Set<string>()
    for (let i = 0; i < 20; i++) {
      targets.add(await retryCopy(pool, `job-${i}`, 'slow-1'))
    }
    // near-1 and far-1 rank alike: both take copies as their loads rise in turn.
    expect([...targets].sort()).toEqual(['far-1', 'near-1'])
    await cleanupPool(c, pool)
  })
})
