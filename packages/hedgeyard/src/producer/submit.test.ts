import { getEventListeners } from 'node:events'
import {
  client,
  eventually,
  isKeyOf,
  loadAndLengths,
  poolKeysInRedis,
  primaries,
  redisUrl,
  uniquePool,
} from '@hedgeyard/testing/helpers'
import { startProxy } from '@hedgeyard/testing/proxy'
import { isClusterRun } from '@hedgeyard/testing/test-redis-kind'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { type Handler, startWorkers, type WorkerGroup } from '../index.js'
import { HedgeyardError, isHedgeyardError } from '../protocol/errors.js'
import { poolKeys, resultKey } from '../protocol/keys.js'
import { Dispatcher } from './dispatcher.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

async function workers(
  pool: string,
  handler: Handler,
  extra: Partial<Parameters<typeof startWorkers>[0]> = {},
): Promise<WorkerGroup> {
  const group = await startWorkers({ redis: redisUrl(), pool, handler, ...extra })
  closers.push(() => group.close())
  return group
}

function dispatcher(pool: string, redis = redisUrl(), extra: Record<string, unknown> = {}): Dispatcher {
  const d = new Dispatcher({ redis, pool, ...extra })
  closers.push(() => d.close())
  return d
}

const echo: Handler = (req, ctx) => ({
  req,
  workerId: ctx.workerId,
  session: ctx.session ?? null,
  attempt: ctx.attempt,
})

describe('submit and results', () => {
  it('returns the handler result and leaves no load behind', async () => {
    const pool = uniquePool('basic')
    const group = await workers(pool, echo, { count: 2 })
    const d = dispatcher(pool)
    const res = (await d.submit({ q: 'hi' }, { session: 'chat-1' })) as {
      req: unknown
      workerId: string
      session: string
    }
    expect(res.req).toEqual({ q: 'hi' })
    expect(group.workerIds).toContain(res.workerId)
    expect(res.session).toBe('chat-1')
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
    const metrics = await d.workerMetrics()
    expect(metrics.map((m) => m.workerId).sort()).toEqual([...group.workerIds].sort())
    expect(metrics.reduce((n, m) => n + m.processed, 0)).toBe(1)
    expect(metrics.every((m) => m.alive && m.state === 'active' && m.capacity === 8 + 64)).toBe(true)
  })

  it('reports a handler failure as HANDLER_ERROR with the remote name and message, and counts it', async () => {
    const pool = uniquePool('fail')
    await workers(
      pool,
      (req) => {
        const { kind } = req as { kind: string }
        if (kind === 'error') throw new RangeError('model refused')
        if (kind === 'string') throw 'plain string'
        if (kind === 'bigint') return { n: 10n }
        if (kind === 'big') return 'x'.repeat(2_000)
        return 'ok'
      },
      { maxResultBytes: 1_000 },
    )
    const d = dispatcher(pool)
    const err = (await d.submit({ kind: 'error' }).catch((e: unknown) => e)) as HedgeyardError
    expect(err).toBeInstanceOf(HedgeyardError)
    expect(err.code).toBe('HANDLER_ERROR')
    expect(err.remoteName).toBe('RangeError')
    expect(err.message).toContain('model refused')
    const nonError = (await d.submit({ kind: 'string' }).catch((e: unknown) => e)) as HedgeyardError
    expect(nonError.code).toBe('HANDLER_ERROR')
    expect(nonError.message).toContain('plain string')
    const bigint = (await d.submit({ kind: 'bigint' }).catch((e: unknown) => e)) as HedgeyardError
    expect(bigint.code).toBe('HANDLER_ERROR')
    expect(bigint.message).toMatch(/not JSON-serialisable/)
    const big = (await d.submit({ kind: 'big' }).catch((e: unknown) => e)) as HedgeyardError
    expect(big.code).toBe('RESULT_TOO_LARGE')
    expect(await d.submit({ kind: 'fine' })).toBe('ok')
    const [m] = await d.workerMetrics()
    expect(m).toMatchObject({ processed: 5, errors: 4, inflight: 0, queueLen: 0 })
  })

  it('never runs more jobs at once on a worker than its concurrency, and enforces the queue capacity', async () => {
    const pool = uniquePool('conc')
    const running = new Map<string, number>()
    let maxSeen = 0
    const group = await workers(
      pool,
      async (_req, ctx) => {
        const now = (running.get(ctx.workerId) ?? 0) + 1
        running.set(ctx.workerId, now)
        maxSeen = Math.max(maxSeen, now)
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 10))
        running.set(ctx.workerId, (running.get(ctx.workerId) ?? 1) - 1)
        return ctx.workerId
      },
      { count: 3, concurrency: 3, queueCapacity: 5 },
    )
    const d = dispatcher(pool)
    // One burst in one turn: exactly 3 x (3 + 5) = 24 fit; the rest are refused at dispatch.
    const burst = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => d.submit(i)))
    const refused = burst.filter((r) => r.status === 'rejected')
    expect(burst.filter((r) => r.status === 'fulfilled')).toHaveLength(24)
    expect(refused.every((r) => isHedgeyardError((r as PromiseRejectedResult).reason, 'SATURATED'))).toBe(
      true,
    )
    // Sustained load through the wait mode: everything completes, the limit holds throughout.
    const results = await Promise.all(
      Array.from({ length: 300 }, (_, i) => d.submit(i, { onSaturated: 'wait', timeoutMs: 30_000 })),
    )
    expect(results).toHaveLength(300)
    expect(maxSeen).toBe(3)
    const perWorker = new Set(results)
    expect([...perWorker].sort()).toEqual([...group.workerIds].sort())
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
  })

  it("with onSaturated 'wait', a burst into a full pool runs in the order it was submitted, each job refused about once", async () => {
    const pool = uniquePool('waitorder')
    const ran: number[] = []
    await workers(
      pool,
      async (req) => {
        ran.push(req as number)
        await new Promise((r) => setTimeout(r, 2))
        return req
      },
      { concurrency: 1, queueCapacity: 1, prefetch: 0 },
    )
    const d = dispatcher(pool)
    const jobs = 150
    const results = await Promise.all(
      Array.from({ length: jobs }, (_, i) => d.submit(i, { onSaturated: 'wait', timeoutMs: 30_000 })),
    )
    expect(results).toEqual(Array.from({ length: jobs }, (_, i) => i))
    // Room goes to the requests that waited, oldest first: the pool runs them in submit order, but
    // for a request sent as a probe while a slot was freeing, which the next one may pass.
    expect(ran.toSorted((a, b) => a - b)).toEqual(results)
    expect(Math.max(...ran.map((job, i) => Math.abs(job - i)))).toBeLessThanOrEqual(10)
    // Each waiting request is sent again when a job ends, not on a timer of its own: the pool is
    // asked about once per job (each polling on its own backoff, it was asked about five times).
    const { saturated } = d.stats()
    expect(saturated).toBeGreaterThanOrEqual(jobs - 2)
    expect(saturated).toBeLessThan(jobs * 1.5)
  })

  it("with onSaturated 'wait', hedged submits into a full pool each run and resolve with their own result", async () => {
    const pool = uniquePool('waithedge')
    const ran = new Set<number>()
    await workers(
      pool,
      async (req) => {
        ran.add(req as number)
        await new Promise((r) => setTimeout(r, 10))
        return req
      },
      { count: 2, concurrency: 2, queueCapacity: 0, prefetch: 0 },
    )
    const d = dispatcher(pool)
    const jobs = 80
    // The hedge comes due while most of them wait for room: nothing is hedged until a copy is out.
    const results = await Promise.allSettled(
      Array.from({ length: jobs }, (_, i) =>
        d.submit(i, { onSaturated: 'wait', timeoutMs: 30_000, hedge: { delayMs: 5 } }),
      ),
    )
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(
      Array.from({ length: jobs }, (_, i) => i),
    )
    expect(ran.size).toBe(jobs)
  })

  it('does not start a job whose deadline passed, and aborts the signal of one that overruns it', async () => {
    const pool = uniquePool('deadline')
    const started: number[] = []
    let abortedWith: unknown
    await workers(
      pool,
      async (req, ctx) => {
        started.push(req as number)
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 600)
          ctx.signal.addEventListener('abort', () => {
            abortedWith = ctx.signal.reason
            clearTimeout(t)
            resolve(undefined)
          })
        })
        return req
      },
      { concurrency: 1 },
    )
    const d = dispatcher(pool)
    const first = d.submit(1, { timeoutMs: 200 }).catch((e: unknown) => e)
    const second = d.submit(2, { timeoutMs: 150 }).catch((e: unknown) => e)
    expect(isHedgeyardError(await first, 'TIMEOUT')).toBe(true)
    expect(isHedgeyardError(await second, 'TIMEOUT')).toBe(true)
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
    expect(started).toEqual([1])
    expect(String(abortedWith)).toMatch(/deadline/)
  })

  it("an aborted signal rejects with ABORTED and stops the job: queued, it leaves its worker's stream; running, its signal aborts", async () => {
    const pool = uniquePool('abort')
    const keys = poolKeys('hy', pool)
    const started: unknown[] = []
    const stoppedWith: unknown[] = []
    await workers(
      pool,
      async (req, ctx) => {
        started.push(req)
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 20_000)
          ctx.signal.addEventListener('abort', () => {
            stoppedWith.push(ctx.signal.reason)
            clearTimeout(t)
            resolve(undefined)
          })
        })
        return req
      },
      { concurrency: 1 },
    )
    const d = dispatcher(pool)
    const runningCaller = new AbortController()
    const queuedCaller = new AbortController()
    const running = d
      .submit('running', { signal: runningCaller.signal, timeoutMs: 30_000 })
      .catch((e: unknown) => e)
    await eventually(() => started.length === 1)
    const queued = d
      .submit('queued', { signal: queuedCaller.signal, timeoutMs: 30_000 })
      .catch((e: unknown) => e)
    await eventually(async () => (await loadAndLengths(c, pool))[0]?.xlen === 2)
    const reason = new Error('the caller left')
    queuedCaller.abort(reason)
    const queuedErr = (await queued) as HedgeyardError
    expect(queuedErr.code).toBe('ABORTED')
    expect(queuedErr.cause).toBe(reason)
    // The queued copy left the stream with its load; the running job goes on.
    await eventually(async () => {
      const [w] = await loadAndLengths(c, pool)
      return w?.xlen === 1 && w.load === 1
    })
    expect(stoppedWith).toEqual([])
    runningCaller.abort()
    expect(isHedgeyardError(await running, 'ABORTED')).toBe(true)
    await eventually(() => stoppedWith.length === 1)
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
    expect(started).toEqual(['running'])
    // Each job's result is the abort, for anyone who reads it later.
    const results = (await poolKeysInRedis(c, pool)).filter((k) => isKeyOf(k, keys, resultKey))
    expect(results).toHaveLength(2)
    for (const key of results) expect(await c.get(key)).toContain('"code":"ABORTED"')
  })

  it('a signal shared by many submits keeps no listener of theirs once they settle', async () => {
    const pool = uniquePool('signal-shared')
    await workers(pool, echo)
    const d = dispatcher(pool)
    const shared = new AbortController()
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => d.submit(i, { signal: shared.signal, timeoutMs: 10_000 })),
    )
    expect(results.map((r) => (r as { req: number }).req)).toEqual(Array.from({ length: 50 }, (_, i) => i))
    expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0)
    // Aborting it later touches none of them.
    shared.abort()
    expect(d.stats().failed).toBe(0)
  })

  it('a signal shared by many submits and streams in flight carries one listener, and aborts them all', async () => {
    const pool = uniquePool('signal-one')
    const ran: unknown[] = []
    await workers(pool, async (req, ctx) => {
      ran.push(req)
      if (req !== 'warm') {
        await new Promise((r) => {
          const timer = setTimeout(r, 10_000)
          ctx.signal.addEventListener('abort', () => r(clearTimeout(timer)))
        })
      }
      return ctx.workerId
    })
    const d = dispatcher(pool)
    await d.submit('warm')
    const shared = new AbortController()
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    const codeOf = (p: Promise<unknown>) =>
      p.then(
        () => 'done',
        (err: unknown) => (err as HedgeyardError).code,
      )
    try {
      const submits = Array.from({ length: 30 }, (_, i) =>
        codeOf(d.submit(i, { signal: shared.signal, timeoutMs: 10_000 })),
      )
      const hedged = codeOf(d.submit('h', { signal: shared.signal, hedge: { delayMs: 5_000 } }))
      const stream = d.stream('s', { signal: shared.signal })
      const streamed = codeOf(
        (async () => {
          for await (const _ of stream) {
          }
        })(),
      )
      expect(getEventListeners(shared.signal, 'abort')).toHaveLength(1)
      shared.abort()
      expect(await Promise.all(submits)).toEqual(Array(30).fill('ABORTED'))
      expect(await hedged).toBe('ABORTED')
      expect(await streamed).toBe('ABORTED')
      expect(getEventListeners(shared.signal, 'abort')).toHaveLength(0)
      await new Promise((r) => setImmediate(r))
      expect(warnings).not.toContain('MaxListenersExceededWarning')
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('a hedged submit aborted while its dispatcher connects fails with ABORTED and never runs', async () => {
    const pool = uniquePool('signal-early')
    const ran: unknown[] = []
    await workers(pool, async (req) => {
      ran.push(req)
      return req
    })
    const d = dispatcher(pool)
    const caller = new AbortController()
    const hedged = d.submit('h', { signal: caller.signal, hedge: { delayMs: 5_000 } })
    caller.abort()
    await expect(hedged).rejects.toMatchObject({ code: 'ABORTED' })
    // The dispatcher is connected by now: a job sent would have run.
    expect(await d.submit('after')).toBe('after')
    expect(ran).toEqual(['after'])
  })

  it('recovers after SCRIPT FLUSH (NOSCRIPT) without the caller noticing', async () => {
    const pool = uniquePool('noscript')
    await workers(pool, echo)
    const d = dispatcher(pool)
    await d.submit(1)
    const flushAll = async () => {
      for (const server of primaries(c)) await server.script('FLUSH')
    }
    await flushAll()
    const res = (await d.submit(2)) as { req: number }
    expect(res.req).toBe(2)
    await flushAll()
    expect(((await d.submit(3)) as { req: number }).req).toBe(3)
  })

  // A proxy stands for one server's address; a cluster client learns the nodes' own addresses and
  // would go around it. Failover and unreachable primaries on a cluster: test/cluster.test.ts.
  it.runIf(!isClusterRun)('recovers a result published while the producer was disconnected', async () => {
    const pool = uniquePool('recover')
    await workers(pool, async (req) => {
      await new Promise((r) => setTimeout(r, 300))
      return req
    })
    const proxy = await startProxy(redisUrl())
    closers.push(() => proxy.close())
    const d = dispatcher(pool, proxy.url)
    await d.submit('warm-up')
    const startedAt = Date.now()
    const pending = d.submit('survives', { timeoutMs: 10_000 })
    await new Promise((r) => setTimeout(r, 100))
    proxy.cut()
    // The worker publishes at ~300 ms, into a channel nobody on the producer side listens to.
    await new Promise((r) => setTimeout(r, 800))
    // Stored while the producer was away: the warm-up's result and this one.
    const keys = poolKeys('hy', pool)
    expect((await poolKeysInRedis(c, pool)).filter((k) => isKeyOf(k, keys, resultKey))).toHaveLength(2)
    proxy.restore()
    expect(await pending).toBe('survives')
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(850)
  })

  // A proxy stands for one server's address; a cluster client learns the nodes' own addresses and
  // would go around it. Failover and unreachable primaries on a cluster: test/cluster.test.ts.
  it.runIf(!isClusterRun)(
    "with onRedisUnavailable 'reject', fails fast with REDIS_UNAVAILABLE while Redis is unreachable",
    async () => {
      const pool = uniquePool('down')
      await workers(pool, echo)
      const proxy = await startProxy(redisUrl())
      closers.push(() => proxy.close())
      const d = dispatcher(pool, proxy.url)
      await d.submit(1)
      proxy.cut()
      await new Promise((r) => setTimeout(r, 50))
      const startedAt = Date.now()
      const err = await d
        .submit(2, { timeoutMs: 5_000, onRedisUnavailable: 'reject' })
        .catch((e: unknown) => e)
      expect(isHedgeyardError(err, 'REDIS_UNAVAILABLE')).toBe(true)
      expect(Date.now() - startedAt).toBeLessThan(2_000)
      proxy.restore()
      await eventually(
        async () => ((await d.submit(3).catch(() => undefined)) as { req?: number } | undefined)?.req === 3,
      )
    },
  )

  // A proxy stands for one server's address; a cluster client learns the nodes' own addresses and
  // would go around it. Failover and unreachable primaries on a cluster: test/cluster.test.ts.
  it.runIf(!isClusterRun)(
    'by default, a submit made while Redis is unreachable waits for it and is then dispatched',
    async () => {
      const pool = uniquePool('wait-redis')
      await workers(pool, echo)
      const proxy = await startProxy(redisUrl())
      closers.push(() => proxy.close())
      const d = dispatcher(pool, proxy.url)
      await d.submit(1)
      proxy.cut()
      await new Promise((r) => setTimeout(r, 50))
      // Racing submits (a session, a hedge) wait as plain ones do.
      const submits = [
        d.submit(2, { timeoutMs: 30_000 }),
        d.submit(3, { timeoutMs: 30_000, session: 's' }),
        d.submit(4, { timeoutMs: 30_000, hedge: { delayMs: 10_000 } }),
      ]
      const early = await Promise.race([
        Promise.allSettled(submits),
        new Promise((r) => setTimeout(() => r('waiting'), 1_000)),
      ])
      expect(early).toBe('waiting')
      proxy.restore()
      const results = (await Promise.all(submits)) as { req: number }[]
      expect(results.map((r) => r.req)).toEqual([2, 3, 4])
      // One still waiting at its deadline fails with REDIS_UNAVAILABLE: it never reached a worker.
      proxy.cut()
      await new Promise((r) => setTimeout(r, 50))
      const late = await d.submit(5, { timeoutMs: 500 }).catch((e: unknown) => e)
      expect(isHedgeyardError(late, 'REDIS_UNAVAILABLE')).toBe(true)
      expect((late as Error).message).toMatch(/before the submit's deadline/)
      const lateRace = await d.submit(6, { timeoutMs: 500, session: 's' }).catch((e: unknown) => e)
      expect(isHedgeyardError(lateRace, 'REDIS_UNAVAILABLE')).toBe(true)
      proxy.restore()
    },
  )
})

describe('bad input', () => {
  it('refuses bad requests and options with a clear error and leaves Redis unchanged', async () => {
    const pool = uniquePool('bad')
    await workers(pool, echo)
    const d = dispatcher(pool, redisUrl(), { maxPayloadBytes: 1_000 })
    await d.submit('warm-up')
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0))
    const before = await poolKeysInRedis(c, pool)
    const snapshot = async () => Promise.all(before.map(async (k) => [k, await c.type(k)]))
    const typesBefore = await snapshot()
    const cycle: Record<string, unknown> = {}
    cycle.self = cycle
    const cases: [unknown, object, string, RegExp][] = [
      ['x'.repeat(2_000), {}, 'PAYLOAD_TOO_LARGE', /maxPayloadBytes is 1000/],
      [{ n: 1n }, {}, 'INVALID_ARGUMENT', /not JSON-serialisable/],
      [cycle, {}, 'INVALID_ARGUMENT', /not JSON-serialisable/],
      [undefined, {}, 'INVALID_ARGUMENT', /not JSON-serialisable/],
      [() => 1, {}, 'INVALID_ARGUMENT', /not JSON-serialisable/],
      [1, { session: '' }, 'INVALID_ARGUMENT', /session must be/],
      [1, { session: 'a{b}' }, 'INVALID_ARGUMENT', /session must be/],
      [1, { session: 'x'.repeat(300) }, 'INVALID_ARGUMENT', /session must be/],
      [
        1,
        { timeoutMs: 0 },
        'INVALID_ARGUMENT',
        /timeoutMs must be an integer between 1 and 2147483647 ms, the longest a Node.js timer waits \(got 0\)/,
      ],
      // A Node.js timer given more than 2^31 - 1 ms fires after 1 ms: such a submit would time out at once.
      [1, { timeoutMs: 2 ** 31 }, 'INVALID_ARGUMENT', /timeoutMs must be .* \(got 2147483648\)/],
      [1, { onSaturated: 'later' }, 'INVALID_ARGUMENT', /onSaturated must be one of 'reject', 'wait'/],
      [1, { sesion: 'typo' }, 'INVALID_ARGUMENT', /unknown option 'sesion'/],
    ]
    for (const [req, options, code, message] of cases) {
      const err = (await d.submit(req, options).catch((e: unknown) => e)) as HedgeyardError
      expect(err.code, `${String(message)}`).toBe(code)
      expect(err.message).toMatch(message)
    }
    expect(await poolKeysInRedis(c, pool)).toEqual(before)
    expect(await snapshot()).toEqual(typesBefore)
    expect(d.stats().submitted).toBe(1 + cases.length)
  })

  it('refuses invalid pool names and options at construction', () => {
    const make = (o: Record<string, unknown>) => () =>
      new Dispatcher({ redis: redisUrl(), pool: 'ok', ...o } as never)
    expect(make({ pool: 'has space' })).toThrow(/pool must be 1-100 characters/)
    expect(make({ pool: 'a{b}' })).toThrow(/pool must be/)
    expect(make({ pool: '' })).toThrow(/pool must be/)
    expect(make({ affinityTtlMs: -1 })).toThrow(/affinityTtlMs must be an integer >= 1 \(got -1\)/)
    expect(make({ prefix: 'a b' })).toThrow(/prefix must be/)
    expect(make({ retries: 3 })).toThrow(/unknown option 'retries'/)
    // The longest a timer waits is allowed; one millisecond more is not.
    expect(make({ timeoutMs: 2 ** 31 - 1, hedging: { fallbackDelayMs: 2 ** 31 - 1 } })).not.toThrow()
    for (const field of ['timeoutMs', 'connectTimeoutMs']) {
      expect(make({ [field]: 2 ** 31 })).toThrow(
        new RegExp(`${field} must be an integer between 1 and 2147483647 ms`),
      )
    }
    expect(make({ hedging: { fallbackDelayMs: 2 ** 31 } })).toThrow(
      /hedging.fallbackDelayMs must be an integer between 0/,
    )
    expect(make({ hedging: { minDelayMs: 2 ** 31 } })).toThrow(
      /hedging.minDelayMs must be an integer between 0/,
    )
    expect(() => new Dispatcher({ pool: 'x' } as never)).toThrow(/redis is required/)
  })

  it('refuses invalid worker options with a clear error', async () => {
    const base = { redis: redisUrl(), pool: uniquePool('badw'), handler: echo }
    await expect(startWorkers({ ...base, concurrency: 0 })).rejects.toThrow(
      /concurrency must be an integer between 1 and 10000 \(got 0\)/,
    )
    await expect(startWorkers({ ...base, handler: 'nope' as never })).rejects.toThrow(
      /handler must be a function/,
    )
    await expect(startWorkers({ ...base, pool: 'a b' })).rejects.toThrow(/pool must be/)
    for (const field of ['leaseMs', 'drainTimeoutMs']) {
      await expect(startWorkers({ ...base, [field]: 2 ** 31 })).rejects.toThrow(
        new RegExp(
          `${field} must be an integer between \\d+ and 2147483647 ms, the longest a Node.js timer waits`,
        ),
      )
    }
    // The read watchdog waits blockMs plus 3 s: that sum must fit in a timer.
    await expect(startWorkers({ ...base, blockMs: 2 ** 31 - 2_000 })).rejects.toThrow(
      /blockMs must be an integer between 10 and 2147480647 ms \(got 2147481648\)/,
    )
  })

  it('fails submits after close with CLOSED', async () => {
    const d = new Dispatcher({ redis: redisUrl(), pool: uniquePool('closed') })
    await d.close()
    const err = await d.submit(1).catch((e: unknown) => e)
    expect(isHedgeyardError(err, 'CLOSED')).toBe(true)
  })
})

describe('redis option', () => {
  // Only one server's client is taken: an ioredis Cluster client is refused by design (its
  // connections' settings would not carry over; test/redis-options.test.ts checks the refusal).
  it.runIf(!isClusterRun)('accepts an ioredis client and leaves it open on close', async () => {
    const pool = uniquePool('client')
    const template = client(redisUrl())
    closers.push(() => template.disconnect())
    const group = await startWorkers({ redis: template, pool, handler: echo })
    closers.push(() => group.close())
    const d = new Dispatcher({ redis: template, pool })
    expect(((await d.submit('via client')) as { req: string }).req).toBe('via client')
    await d.close()
    expect(await template.ping()).toBe('PONG')
  })
})
