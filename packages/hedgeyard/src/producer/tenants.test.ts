import { fakeWorkers } from '@hedgeyard/testing/fake-pool'
import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { clearPoolLimits, getPoolLimits, setPoolLimits } from '../admin/pool-limits.js'
import { type Handler, startWorkers } from '../index.js'
import { entryFieldList, entryFields } from '../protocol/codec.js'
import { isHedgeyardError } from '../protocol/errors.js'
import {
  CONSUMER_GROUP,
  classLimitsKey,
  inflightKey,
  poolKeys,
  queueKey,
  tenantQuotaKey,
} from '../protocol/keys.js'
import { type DispatchItem, dispatchJobs } from '../protocol/scripts/dispatch.js'
import { rescueJobs } from '../protocol/scripts/rescue.js'
import { Dispatcher } from './dispatcher.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

interface Job {
  tenant?: string
  sleepMs?: number
  fail?: boolean
}

/** Runs jobs, sleeping `sleepMs`; counts each tenant's jobs running at once and the most seen. */
function tracker(): { handler: Handler<Job>; running: Map<string, number>; most: Map<string, number> } {
  const running = new Map<string, number>()
  const most = new Map<string, number>()
  const handler: Handler<Job> = async (job, ctx) => {
    const t = job.tenant ?? ''
    running.set(t, (running.get(t) ?? 0) + 1)
    most.set(t, Math.max(most.get(t) ?? 0, running.get(t) as number))
    try {
      if (job.sleepMs) await new Promise((r) => setTimeout(r, job.sleepMs))
      if (job.fail) throw Object.assign(new Error('upstream failed'), { retryable: true })
      return ctx.workerId
    } finally {
      running.set(t, (running.get(t) as number) - 1)
    }
  }
  return { handler, running, most }
}

async function pool(handler: Handler<Job>, concurrency = 8): Promise<string> {
  const name = uniquePool('tenants')
  const group = await startWorkers({ redis: redisUrl(), pool: name, handler, count: 2, concurrency })
  closers.push(() => group.close())
  return name
}

function dispatcher(name: string): Dispatcher<Job, string> {
  const d = new Dispatcher<Job, string>({ redis: redisUrl(), pool: name })
  closers.push(() => d.close())
  return d
}

/** 'ok', or the code of the error the promise failed with. */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'ok',
    (err: unknown) => (isHedgeyardError(err) ? err.code : String(err)),
  )
}

describe('tenant quotas', () => {
  it("gives each tenant of a class the class's rate on its own, across two dispatchers", async () => {
    const name = await pool(tracker().handler)
    const ref = { redis: redisUrl(), pool: name }
    await setPoolLimits(ref, { rate: { limit: 3, periodMs: 60_000, burst: 3 } }, { limitClass: 'free' })
    const ds = [dispatcher(name), dispatcher(name)]
    const sent: Promise<unknown>[] = []
    for (let i = 0; i < 5; i++) {
      for (const tenant of ['a', 'b']) {
        const d = ds[i % 2] as Dispatcher<Job, string>
        sent.push(d.submit({ tenant }, { limitKey: tenant, limitClass: 'free', onRateLimited: 'reject' }))
      }
    }
    const settled = await Promise.allSettled(sent)
    for (const [t, tenant] of ['a', 'b'].entries()) {
      const own = settled.filter((_, i) => i % 2 === t)
      expect(own.filter((s) => s.status === 'fulfilled')).toHaveLength(3)
      for (const s of own.filter((s) => s.status === 'rejected')) {
        const err = (s as PromiseRejectedResult).reason
        expect(err).toMatchObject({ code: 'RATE_LIMITED' })
        expect(err.message).toContain(`tenant '${tenant}' is over the quota of its class 'free'`)
        // 3 per minute: the next slot is 20 s away, give or take the staggering of refusals.
        expect(err.retryAfterMs).toBeGreaterThan(15_000)
      }
    }
    // Jobs without a tenant, and tenants of a class without limits, are not held back.
    const free = await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        outcome((ds[0] as Dispatcher<Job, string>).submit({}, i % 2 ? {} : { limitKey: 'c' })),
      ),
    )
    expect(free).toEqual(Array(5).fill('ok'))
  })

  it("charges each tenant's cost budget on its own, and a job must fit the pool's quota too", async () => {
    const name = await pool(tracker().handler)
    const ref = { redis: redisUrl(), pool: name }
    await setPoolLimits(
      ref,
      { cost: { limit: 100, periodMs: 60_000, burst: 100 } },
      { limitClass: 'metered' },
    )
    await setPoolLimits(ref, { cost: { limit: 150, periodMs: 60_000, burst: 150 } })
    const d = dispatcher(name)
    const submit = (tenant: string, cost: number) =>
      outcome(
        d.submit({ tenant }, { limitKey: tenant, limitClass: 'metered', cost, onRateLimited: 'reject' }),
      )
    expect(await submit('a', 60)).toBe('ok')
    expect(await submit('a', 50)).toBe('RATE_LIMITED')
    expect(await submit('b', 80)).toBe('ok')
    // 140 of the pool's 150 are spent: b has 20 of its own left, but the pool only 10.
    const err = await d
      .submit({ tenant: 'b' }, { limitKey: 'b', limitClass: 'metered', cost: 20, onRateLimited: 'reject' })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'RATE_LIMITED', message: expect.stringContaining(`pool '${name}'`) })
    // A job refused by one quota took nothing from the other: b's 10 fit both.
    expect(await submit('b', 10)).toBe('ok')
    expect(await submit('a', 40)).toBe('RATE_LIMITED')
  })

  it('counts hedges and retries against the tenant rate, and a tied pair once', async () => {
    const name = await pool(tracker().handler)
    const ref = { redis: redisUrl(), pool: name }
    await setPoolLimits(ref, { rate: { limit: 6, periodMs: 60_000, burst: 6 } }, { limitClass: 'free' })
    const d = dispatcher(name)
    const tenant = { limitKey: 'h', limitClass: 'free', onRateLimited: 'reject' } as const
    // A tied pair: two copies queued at once, one unit.
    expect(await outcome(d.submit({ sleepMs: 50 }, { ...tenant, hedge: { mode: 'tied' } }))).toBe('ok')
    // A hedge sent after 50 ms: two units.
    expect(await outcome(d.submit({ sleepMs: 300 }, { ...tenant, hedge: { delayMs: 50 } }))).toBe('ok')
    expect(d.stats().hedgesSent).toBe(1)
    // A retry after a retryable failure: two units.
    const retried = d.submit({ fail: true }, { ...tenant, retry: { maxAttempts: 2, backoffMs: 0 } })
    expect(await outcome(retried)).toBe('HANDLER_ERROR')
    expect(d.stats().retriesSent).toBe(1)
    expect(await outcome(d.submit({}, tenant))).toBe('ok')
    expect(await outcome(d.submit({}, tenant))).toBe('RATE_LIMITED')
  })
})

describe('tenant concurrency', () => {
  it('keeps a tenant at its cap of jobs in flight; the others wait and all complete, other tenants unhindered', async () => {
    const t = tracker()
    const name = await pool(t.handler)
    const ref = { redis: redisUrl(), pool: name }
    await setPoolLimits(ref, { concurrency: 2 }, { limitClass: 'pair' })
    const ds = [dispatcher(name), dispatcher(name)]
    const keys = poolKeys('hy', name)
    let mostInflight = 0
    const sampler = setInterval(() => {
      void c.zcard(inflightKey(keys, 'slow')).then((n) => {
        mostInflight = Math.max(mostInflight, n)
      })
    }, 10)
    const wait = { limitClass: 'pair', onSaturated: 'wait', timeoutMs: 20_000 } as const
    const started = Date.now()
    const slow = Array.from({ length: 10 }, (_, i) =>
      (ds[i % 2] as Dispatcher<Job, string>).submit(
        { tenant: 'slow', sleepMs: 150 },
        { ...wait, limitKey: 'slow' },
      ),
    )
    const other = Array.from({ length: 2 }, () =>
      (ds[0] as Dispatcher<Job, string>)
        .submit({ tenant: 'other', sleepMs: 150 }, { ...wait, limitKey: 'other' })
        .then(() => Date.now() - started),
    )
    const [otherMs] = await Promise.all([Promise.all(other), Promise.all(slow)])
    clearInterval(sampler)
    expect(t.most.get('slow')).toBe(2)
    expect(mostInflight).toBeLessThanOrEqual(2)
    // Ten jobs of 150 ms, two at a time: five rounds. The other tenant ran in the first.
    expect(Date.now() - started).toBeGreaterThanOrEqual(5 * 150)
    for (const ms of otherMs) expect(ms).toBeLessThan(5 * 150)
    expect((ds[0] as Dispatcher).stats().saturated + (ds[1] as Dispatcher).stats().saturated).toBeGreaterThan(
      0,
    )
    await eventually(async () => (await c.exists(inflightKey(keys, 'slow'))) === 0)

    // With 'reject', a submit over the cap fails at once, naming the tenant.
    const held = [0, 1].map(() =>
      (ds[0] as Dispatcher<Job, string>).submit({ sleepMs: 300 }, { limitKey: 'slow', limitClass: 'pair' }),
    )
    await eventually(async () => (await c.zcard(inflightKey(keys, 'slow'))) === 2)
    await expect(
      (ds[1] as Dispatcher<Job, string>).submit({}, { limitKey: 'slow', limitClass: 'pair' }),
    ).rejects.toMatchObject({
      code: 'SATURATED',
      message: "tenant 'slow' has 2 jobs in flight, as many as its class 'pair' allows",
    })
    await Promise.all(held)
  })

  it('a job leaves its tenant when it ends: completed, failed, cancelled, or past its deadline', async () => {
    const name = await pool(tracker().handler)
    const ref = { redis: redisUrl(), pool: name }
    const keys = poolKeys('hy', name)
    const key = inflightKey(keys, 't1')
    await setPoolLimits(ref, { concurrency: 1 }, { limitClass: 'one' })
    const d = dispatcher(name)
    const opts = { limitKey: 't1', limitClass: 'one' } as const

    // The entry names its tenant; the job is in flight until its deadline, or until it completes.
    const running = d.submit({ sleepMs: 300 }, { ...opts, timeoutMs: 10_000 })
    await eventually(async () => (await c.zcard(key)) === 1)
    const [member, score] = (await c.zrange(key, '0', '-1', 'WITHSCORES')) as [string, string]
    const [seconds] = await c.time()
    expect(Number(score) - Number(seconds) * 1000).toBeGreaterThan(8_000)
    const streams = await Promise.all(
      (await c.zrange(keys.load, '0', '-1')).map((w) => c.xrange(queueKey(keys, w), '-', '+')),
    )
    const entry = streams.flat().find(([, fields]) => entryFields(fields).id === member)
    expect(entryFields(entry?.[1] ?? [])).toMatchObject({ tenant: 't1' })
    await running
    expect(await c.exists(key)).toBe(0)

    // A retried job whose copies all failed: no result was elected, its producer frees the slot.
    const failed = d.submit({ fail: true }, { ...opts, retry: { maxAttempts: 2, backoffMs: 0 } })
    await expect(failed).rejects.toMatchObject({ code: 'HANDLER_ERROR' })
    await eventually(async () => (await c.exists(key)) === 0)

    // A cancelled job.
    const abort = new AbortController()
    const cancelled = d.submit({ sleepMs: 5_000 }, { ...opts, signal: abort.signal })
    await eventually(async () => (await c.zcard(key)) === 1)
    abort.abort()
    await expect(cancelled).rejects.toMatchObject({ code: 'ABORTED' })
    await eventually(async () => (await c.exists(key)) === 0)

    // A job whose end was never recorded (its producer and worker lost) holds its slot only until
    // its deadline.
    await c.zadd(key, Date.now() + 400, 'lost-job')
    await expect(d.submit({}, opts)).rejects.toMatchObject({ code: 'SATURATED' })
    await new Promise((r) => setTimeout(r, 500))
    await expect(d.submit({}, opts)).resolves.toBeTypeOf('string')
  })
})

describe('tenant streams', () => {
  it('a streamed job holds its slot until its stream ends, and a hedged stream holds one', async () => {
    const name = uniquePool('tenant-stream')
    const handler: Handler<{ chunks: number }> = async function* (req) {
      for (let i = 0; i < req.chunks; i++) {
        await new Promise((r) => setTimeout(r, 50))
        yield i
      }
      return 'done'
    }
    const group = await startWorkers({ redis: redisUrl(), pool: name, handler, count: 2 })
    closers.push(() => group.close())
    await setPoolLimits({ redis: redisUrl(), pool: name }, { concurrency: 1 }, { limitClass: 'one' })
    const d = new Dispatcher<{ chunks: number }, string>({ redis: redisUrl(), pool: name })
    closers.push(() => d.close())
    const key = inflightKey(poolKeys('hy', name), 's1')
    const opts = { limitKey: 's1', limitClass: 'one' } as const
    const stream = d.stream<number>({ chunks: 4 }, { ...opts, hedge: { delayMs: 20 } })
    const seen: number[] = []
    for await (const chunk of stream) {
      seen.push(chunk.data)
      if (seen.length === 1) {
        expect(await c.zcard(key)).toBe(1)
        await expect(d.submit({ chunks: 0 }, opts)).rejects.toMatchObject({ code: 'SATURATED' })
      }
    }
    expect(seen).toEqual([0, 1, 2, 3])
    expect(await stream.result).toBe('done')
    // The hedge went out before the first chunk, on the job's slot.
    expect(d.stats().hedgesSent).toBe(1)
    await eventually(async () => (await c.exists(key)) === 0)
    await expect(d.submit({ chunks: 0 }, opts)).resolves.toBe('done')
  })
})

describe('tenant jobs rescued', () => {
  it("rescue takes a dropped or dead-lettered job out of its tenant's jobs in flight, and keeps a moved one", async () => {
    const name = uniquePool('tenant-rescue')
    const fake = await fakeWorkers(redisUrl(), name, { dead: 0, live: 0 })
    closers.push(() => fake.disconnect())
    const k = poolKeys('hy', name)
    await setPoolLimits({ redis: redisUrl(), pool: name }, { concurrency: 10 }, { limitClass: 'c' })
    const job = (jobId: string, extra: Partial<DispatchItem> = {}): DispatchItem => ({
      jobId,
      session: '',
      payload: '1',
      timeoutMs: 60_000,
      attempt: 1,
      maxAttempts: 1,
      exclude: 'live',
      race: '',
      copies: 1,
      limitKey: 't',
      limitClass: 'c',
      ...extra,
    })
    const settings = { producerId: 'p', affinityTtlMs: 1_000, resultTtlMs: undefined, seed: 1 }
    // Started, out of attempts: dead-lettered. Past its deadline: dropped. Unread: moved.
    await dispatchJobs(fake, k, settings, [
      job('lettered'),
      job('expired', { timeoutMs: 1 }),
      job('moved', { maxAttempts: 3 }),
    ])
    await c.xreadgroup('GROUP', CONSUMER_GROUP, 'dead', 'COUNT', 2, 'STREAMS', queueKey(k, 'dead'), '>')
    expect(await c.zrange(inflightKey(k, 't'), '0', '-1')).toEqual(['expired', 'lettered', 'moved'])
    await new Promise((r) => setTimeout(r, 5))
    await c.zadd(k.alive, 1, 'dead')
    const rescued = await rescueJobs(
      fake,
      k,
      { budget: 100, deadLetterCap: 100, resultTtlMs: 60_000 },
      { mode: 'dead' },
    )
    expect(rescued).toMatchObject({ moved: 1, lettered: 1, dropped: 1 })
    expect(await c.zrange(inflightKey(k, 't'), '0', '-1')).toEqual(['moved'])
    const [moved] = await c.xrange(queueKey(k, 'live'), '-', '+')
    expect(entryFields(moved?.[1] ?? [])).toMatchObject({ id: 'moved', tenant: 't' })
  })
})

describe('tenant limits stored with the pool', () => {
  it('are set, read back and cleared per class, and checked', async () => {
    const name = uniquePool('tenant-store')
    const ref = { redis: redisUrl(), pool: name }
    const keys = poolKeys('hy', name)
    await setPoolLimits(
      ref,
      { rate: { limit: 10, periodMs: 60_000 }, concurrency: 4 },
      { limitClass: 'free' },
    )
    await setPoolLimits(ref, { rate: { limit: 50, periodMs: 1_000, burst: 5 } })
    expect(await getPoolLimits(ref, { limitClass: 'free' })).toEqual({
      rate: { limit: 10, periodMs: 60_000, burst: 1 },
      concurrency: 4,
    })
    expect(await getPoolLimits(ref)).toEqual({ rate: { limit: 50, periodMs: 1_000, burst: 5 } })
    expect(await getPoolLimits(ref, { limitClass: 'pro' })).toEqual({})
    expect(await c.hgetall(classLimitsKey(keys, 'free'))).toEqual({
      rate: '10',
      rate_period: '60000',
      rate_burst: '1',
      concurrency: '4',
    })
    await expect(setPoolLimits(ref, { concurrency: 4 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limits.concurrency is a cap per tenant'),
    })
    await expect(setPoolLimits(ref, { concurrency: 0 }, { limitClass: 'free' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limits.concurrency'),
    })
    await expect(setPoolLimits(ref, { concurrency: 1 }, { limitClass: 'a:b' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limitClass'),
    })
    expect(await clearPoolLimits(ref, { limitClass: 'free' })).toBe(true)
    expect(await getPoolLimits(ref, { limitClass: 'free' })).toEqual({})
    expect(await getPoolLimits(ref)).toEqual({ rate: { limit: 50, periodMs: 1_000, burst: 5 } })
    expect(await clearPoolLimits(ref, { limitClass: 'free' })).toBe(false)
    await clearPoolLimits(ref)
  })

  it('refuses a bad limitKey or limitClass, naming the option', async () => {
    const d = new Dispatcher({ redis: redisUrl(), pool: uniquePool('tenant-args') })
    closers.push(() => d.close())
    await expect(d.submit({}, { limitKey: 'a b' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limitKey'),
    })
    await expect(d.submit({}, { limitKey: 'x'.repeat(129) })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limitKey'),
    })
    await expect(d.submit({}, { limitKey: 'a', limitClass: 'a:b' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limitClass'),
    })
    await expect(d.submit({}, { limitClass: 'free' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('limitClass applies to a tenant'),
    })
    expect(() => d.stream({}, { limitKey: '{x}' })).toThrow(/limitKey/)
  })
})

describe('tenant keys tampered with', () => {
  it('an entry whose tenant is not a valid id is dead-lettered, and the next entry runs', async () => {
    const name = uniquePool('tenant-entry')
    const ran: unknown[] = []
    const group = await startWorkers({
      redis: redisUrl(),
      pool: name,
      handler: (req) => {
        ran.push(req)
        return 'ok'
      },
    })
    closers.push(() => group.close())
    const keys = poolKeys('hy', name)
    const q = queueKey(keys, group.workerIds[0] as string)
    const deadline = String(Date.now() + 60_000)
    const entry = (id: string, payload: string, tenant: string) =>
      c.xadd(q, '*', ...entryFieldList({ id, payload, producer: 'p-1', deadline, tenant }))
    await entry('bad-1', '1', 'a{b}')
    await entry('ok-1', '2', 'tenant-1')
    await eventually(async () => ran.length === 1)
    expect(ran).toEqual([2])
    const dead = await eventually(async () => {
      const letters = await c.xrange(keys.dead, '-', '+')
      return letters.length === 1 ? letters : undefined
    })
    expect(dead?.[0]?.[1].slice(0, 2)).toEqual(['reason', 'invalid entry: tenant is not a valid id'])
  })

  it("a class's unreadable limits fail that class's jobs, naming the key, and no other job", async () => {
    const t = tracker()
    const name = await pool(t.handler)
    const keys = poolKeys('hy', name)
    await c.hset(classLimitsKey(keys, 'broken'), 'concurrency', 'lots')
    await c.set(classLimitsKey(keys, 'notahash'), 'x')
    await setPoolLimits({ redis: redisUrl(), pool: name }, { concurrency: 2 }, { limitClass: 'fine' })
    const d = dispatcher(name)
    // One batch: the jobs of the broken classes fail, the others in the same script call run.
    const [broken, notahash, fine, plain] = await Promise.allSettled([
      d.submit({}, { limitKey: 'a', limitClass: 'broken' }),
      d.submit({}, { limitKey: 'a', limitClass: 'notahash' }),
      d.submit({}, { limitKey: 'a', limitClass: 'fine' }),
      d.submit({}),
    ])
    expect(broken).toMatchObject({
      status: 'rejected',
      reason: {
        code: 'PROTOCOL_ERROR',
        message: expect.stringContaining(
          `${classLimitsKey(keys, 'broken')}: concurrency must be a positive whole number`,
        ),
      },
    })
    expect(notahash).toMatchObject({
      status: 'rejected',
      reason: {
        code: 'PROTOCOL_ERROR',
        message: expect.stringContaining(`${classLimitsKey(keys, 'notahash')} is not a hash`),
      },
    })
    expect(fine.status).toBe('fulfilled')
    expect(plain.status).toBe('fulfilled')
    // Fixed with `limits set`, the class works again.
    await setPoolLimits({ redis: redisUrl(), pool: name }, { concurrency: 2 }, { limitClass: 'broken' })
    await expect(d.submit({}, { limitKey: 'a', limitClass: 'broken' })).resolves.toBeTypeOf('string')
  })

  it("a tenant's state keys of another type or with junk stop no one, and are replaced", async () => {
    const name = await pool(tracker().handler)
    const keys = poolKeys('hy', name)
    const ref = { redis: redisUrl(), pool: name }
    await setPoolLimits(
      ref,
      { rate: { limit: 100, periodMs: 1_000, burst: 10 }, concurrency: 2 },
      { limitClass: 'c' },
    )
    await c.set(inflightKey(keys, 'evil'), 'not a zset')
    await c.rpush(tenantQuotaKey(keys, 'c', 'evil'), 'not a hash')
    // Members no dispatch wrote: deadlines no job can have, and a TAT that is not a number.
    await c.zadd(inflightKey(keys, 'junk'), '+inf', 'forever', 1e18, 'far', 5, 'past')
    await c.hset(tenantQuotaKey(keys, 'c', 'junk'), 'rate', 'soon')
    const d = dispatcher(name)
    const opts = (limitKey: string) => ({ limitKey, limitClass: 'c' })
    const results = await Promise.allSettled([
      d.submit({}, opts('good')),
      d.submit({}, opts('evil')),
      d.submit({}, opts('junk')),
      d.submit({}, opts('good')),
    ])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled', 'fulfilled'])
    expect(await c.type(tenantQuotaKey(keys, 'c', 'evil'))).toBe('hash')
    expect(await c.zrange(inflightKey(keys, 'junk'), '0', '-1')).toEqual([])
    expect(Number(await c.hget(tenantQuotaKey(keys, 'c', 'junk'), 'rate'))).toBeGreaterThan(1e12)
    // A state key of another type written again while the tenant has jobs in flight is replaced
    // by the next dispatch, and other tenants' jobs in that batch go on.
    const slow = d.submit({ sleepMs: 300 }, opts('evil'))
    await eventually(async () => (await c.zcard(inflightKey(keys, 'evil'))) === 1)
    await c.del(inflightKey(keys, 'evil'))
    await c.set(inflightKey(keys, 'evil'), 'again')
    expect(await Promise.all([d.submit({}, opts('good')), d.submit({}, opts('evil'))])).toHaveLength(2)
    await slow
    expect(['zset', 'none']).toContain(await c.type(inflightKey(keys, 'evil')))
  })
})
