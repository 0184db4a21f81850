import {
  type ClientConnection,
  cleanupPool,
  client,
  clientConnections,
  eventually,
  gate,
  killConnection,
  loadAndLengths,
  redisUrl,
  uniquePool,
} from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { cancelJob } from '../admin/cancel-job.js'
import { Dispatcher } from '../producer/dispatcher.js'
import { entryFieldList } from '../protocol/codec.js'
import { CONSUMER_GROUP, poolKeys, queueKey, resultKey } from '../protocol/keys.js'
import { startWorkers } from './start-workers.js'

const c = client()
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

async function setup(pool: string, extra: { blockMs?: number; leaseMs?: number } = {}) {
  const group = await startWorkers({
    redis: redisUrl(),
    pool,
    idPrefix: `${pool}-w`,
    handler: (req) => req,
    ...extra,
  })
  closers.push(() => group.close())
  const d = new Dispatcher({ redis: redisUrl(), pool })
  closers.push(() => d.close())
  return { group, d }
}

async function connectionByName(name: string): Promise<ClientConnection | undefined> {
  return (await clientConnections(c)).find((conn) => conn.name === name)
}

describe('worker loop', () => {
  it('with prefetch, reads queued jobs ahead yet runs no more than its concurrency, in order', async () => {
    const pool = uniquePool('prefetch')
    const keys = poolKeys('hy', pool)
    const order: number[] = []
    let runningNow = 0
    let mostAtOnce = 0
    const held = gate()
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      idPrefix: `${pool}-w`,
      concurrency: 1,
      prefetch: 3,
      handler: async (n: number) => {
        runningNow++
        mostAtOnce = Math.max(mostAtOnce, runningNow)
        order.push(n)
        if (n === 0) await held.wait
        runningNow--
        return n
      },
    })
    closers.push(() => group.close())
    const d = new Dispatcher<number, number>({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    const jobs = [0, 1, 2, 3, 4, 5].map((n) => d.submit(n))
    const q = queueKey(keys, group.workerIds[0] as string)
    // Job 0 holds the only slot; three more are read ahead; the last two wait unread in the stream.
    await eventually(async () => (await c.xpending(q, CONSUMER_GROUP))[0] === 4)
    expect(await c.xlen(q)).toBe(6)
    expect(order).toEqual([0])
    held.open()
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4, 5])
    expect(order).toEqual([0, 1, 2, 3, 4, 5])
    expect(mostAtOnce).toBe(1)
  })

  it('when draining, hands the jobs it read ahead to another worker, attempt unchanged', async () => {
    const pool = uniquePool('prefetchdrain')
    const keys = poolKeys('hy', pool)
    const held = gate()
    type Ran = { n: number; worker: string; attempt: number }
    const handler = async (n: number, ctx: { workerId: string; attempt: number }): Promise<Ran> => {
      if (n === 0) await held.wait
      return { n, worker: ctx.workerId, attempt: ctx.attempt }
    }
    const a = await startWorkers({
      redis: redisUrl(),
      pool,
      idPrefix: `${pool}-a`,
      concurrency: 1,
      prefetch: 5,
      handler,
    })
    closers.push(() => a.close())
    const d = new Dispatcher<number, Ran>({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    const jobs = [0, 1, 2, 3].map((n) => d.submit(n))
    const q = queueKey(keys, a.workerIds[0] as string)
    // Job 0 holds a's only slot; jobs 1-3 are read ahead by a.
    await eventually(async () => (await c.xpending(q, CONSUMER_GROUP))[0] === 4)
    const b = await startWorkers({ redis: redisUrl(), pool, idPrefix: `${pool}-b`, concurrency: 4, handler })
    closers.push(() => b.close())
    const closing = a.close()
    // Without the hand-back they would wait behind job 0, which waits for the gate.
    const handedBack = await Promise.race([
      Promise.all(jobs.slice(1)),
      new Promise<'still waiting'>((r) => setTimeout(() => r('still waiting'), 10_000)),
    ])
    expect(handedBack).toEqual([1, 2, 3].map((n) => ({ n, worker: b.workerIds[0], attempt: 1 })))
    held.open()
    expect(await jobs[0]).toEqual({ n: 0, worker: a.workerIds[0], attempt: 1 })
    await closing
    expect(await c.zscore(keys.load, a.workerIds[0] as string)).toBeNull()
  })

  it('rejects a negative prefetch, naming the option', async () => {
    await expect(
      startWorkers({ redis: redisUrl(), pool: 'p', handler: () => 1, prefetch: -1 }),
    ).rejects.toThrow(/prefetch/)
  })

  it('keeps consuming after its blocking connection is killed', async () => {
    const pool = uniquePool('kill')
    const { group, d } = await setup(pool)
    expect(await d.submit('before')).toBe('before')
    const name = `hy:worker:${group.workerIds[0]}`
    const conn = (await eventually(() => connectionByName(name))) as ClientConnection
    expect(await killConnection(conn)).toBe(1)
    expect(await d.submit('after', { timeoutMs: 10_000 })).toBe('after')
    const again = await connectionByName(name)
    expect(again).toBeDefined()
    expect(again?.id).not.toBe(conn.id)
  })

  it('registers again and keeps serving when Redis lost the pool (keys flushed)', async () => {
    const pool = uniquePool('flushed')
    const { d } = await setup(pool, { leaseMs: 300, blockMs: 200 })
    expect(await d.submit(1)).toBe(1)
    await cleanupPool(c, pool)
    // The heartbeat finds its hash gone and registers again; the reader recreates its group.
    expect(
      await eventually(() => d.submit(2, { timeoutMs: 2_000 }).catch(() => undefined), 10_000, 100),
    ).toBe(2)
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
  })

  it('names its connections so CLIENT LIST shows who is who', async () => {
    const pool = uniquePool('names')
    const { group, d } = await setup(pool)
    await d.submit(1)
    const list = (await clientConnections(c)).map((conn) => conn.line).join('\n')
    expect(list).toContain(`name=hy:worker:${group.workerIds[0]} `)
    expect(list).toContain(`name=hy:producer:${d.producerId} `)
    expect(list).toContain(`name=hy:results:${d.producerId} `)
  })

  it('does not abort a job whose deadline is further off than a timer waits, or that has none', async () => {
    const pool = uniquePool('fardeadline')
    const keys = poolKeys('hy', pool)
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      idPrefix: `${pool}-w`,
      handler: async (_req, ctx) => {
        await new Promise((resolve) => setTimeout(resolve, 150))
        return { aborted: ctx.signal.aborted }
      },
    })
    closers.push(() => group.close())
    const [seconds] = await c.time()
    const now = Number(seconds) * 1000
    const q = queueKey(keys, group.workerIds[0] as string)
    // Written as another client could: a deadline 2^32 ms (about 50 days) away, and none at all.
    // A Node.js timer set for either would fire after 1 ms and abort the handler at once.
    const base = { payload: '1', producer: 'test-producer', enqueued: String(now) }
    await c.xadd(q, '*', ...entryFieldList({ id: 'far', ...base, deadline: String(now + 2 ** 32) }))
    await c.xadd(q, '*', ...entryFieldList({ id: 'none', ...base }))
    for (const jobId of ['far', 'none']) {
      await eventually(async () => (await c.get(resultKey(keys, jobId))) !== null)
      const envelope = JSON.parse((await c.get(resultKey(keys, jobId))) as string)
      expect(envelope).toMatchObject({ ok: true, value: { aborted: false } })
    }
    await cleanupPool(c, pool)
  })

  it("aborts a handler's signal with an AbortError naming why: its deadline, a cancel", async () => {
    const pool = uniquePool('abortreason')
    const reasons: { name: string; message: string }[] = []
    const started: string[] = []
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      idPrefix: `${pool}-w`,
      handler: (_req, ctx) =>
        new Promise((_resolve, reject) => {
          started.push(ctx.jobId)
          ctx.signal.addEventListener('abort', () => {
            const r = ctx.signal.reason as Error
            reasons.push({ name: r.name, message: r.message })
            reject(r)
          })
        }),
    })
    closers.push(() => group.close())
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    await expect(d.submit('slow', { timeoutMs: 300 })).rejects.toMatchObject({ code: 'TIMEOUT' })
    await eventually(async () => reasons.length === 1)
    const cancelled = d.submit('cancelled', { timeoutMs: 10_000 })
    await eventually(async () => started.length === 2)
    await cancelJob({ redis: redisUrl(), pool }, started[1] as string)
    await expect(cancelled).rejects.toMatchObject({ code: 'CANCELLED' })
    await eventually(async () => reasons.length === 2)
    // As @hedgeyard/race aborts its losing attempts, and as fetch rejects: one check for all.
    expect(reasons[0]).toEqual({ name: 'AbortError', message: 'deadline exceeded' })
    expect(reasons[1]?.name).toBe('AbortError')
    expect(reasons[1]?.message).toMatch(/^cancelled: /)
    await cleanupPool(c, pool)
  })
})
