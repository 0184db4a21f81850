import { spawnGateway } from '@hedgeyard/testing/gateway-process'
import { eventually, loadAndLengths } from '@hedgeyard/testing/helpers'
import { startProxy } from '@hedgeyard/testing/proxy'
import { startLocalRedis } from '@hedgeyard/testing/redis-server'
import { Dispatcher, isHedgeyardError, poolKeys, type SubmitOptions, startWorkers } from 'hedgeyard'
import { queueKey } from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'

const cleanups: (() => Promise<unknown> | unknown)[] = []

afterAll(async () => {
  for (const f of cleanups.reverse()) await f()
})

/** Submits `total` requests from `loops` callers that each submit, await, and submit again. */
async function loopingCallers(
  d: Dispatcher<number, number>,
  total: number,
  loops: number,
  options: SubmitOptions,
  onDone: () => void,
): Promise<{ results: Map<number, number>; failures: unknown[] }> {
  const results = new Map<number, number>()
  const failures: unknown[] = []
  let next = 0
  await Promise.all(
    Array.from({ length: loops }, async () => {
      while (next < total) {
        const n = next++
        try {
          results.set(n, await d.submit(n, options))
        } catch (err) {
          failures.push(err)
        }
        onDone()
      }
    }),
  )
  return { results, failures }
}

describe('Redis restart', () => {
  it('with AOF always, a SIGKILL and 2 s away under load: no submit fails, every job runs exactly once', async () => {
    const redis = await startLocalRedis(['--appendonly', 'yes', '--appendfsync', 'always'])
    cleanups.push(() => redis.stop())
    const pool = 'ride-through'
    const runs = new Map<number, number>()
    const group = await startWorkers({
      redis: redis.url,
      pool,
      count: 2,
      concurrency: 8,
      // Above the outage and the reconnects after it, on a loaded machine too: within its lease a
      // worker is not taken for dead (reliability.md, "Limits": past it, rescue may run a job again).
      leaseMs: 10_000,
      blockMs: 500,
      handler: async (n: number) => {
        runs.set(n, (runs.get(n) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, 2))
        return n
      },
    })
    cleanups.push(() => group.close())
    const d = new Dispatcher<number, number>({ redis: redis.url, pool })
    cleanups.push(() => d.close())
    const total = 3_000
    let done = 0
    let restarted: Promise<void> | undefined
    const load = loopingCallers(d, total, 16, { timeoutMs: 30_000 }, () => {
      // A third of the way in, Redis is killed mid-stream and comes back 2 s later on its port.
      if (++done === 1_000)
        restarted = (async () => {
          redis.kill()
          await new Promise((r) => setTimeout(r, 2_000))
          await redis.restart()
        })()
    })
    const { results, failures } = await load
    await restarted
    expect(failures).toEqual([])
    expect(results.size).toBe(total)
    for (const [n, value] of results) expect(value).toBe(n)
    // Each job ran once: none lost, none queued twice by a dispatch whose reply was lost, none run
    // again by a worker that read its pending entries after the restart.
    const twice = [...runs].filter(([, count]) => count !== 1)
    expect(twice).toEqual([])
    expect(runs.size).toBe(total)
    const c = new Redis(redis.url)
    cleanups.push(() => c.disconnect())
    await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
  })

  it('a dispatch whose reply was lost is found by its receipt, not queued again', async () => {
    const redis = await startLocalRedis()
    cleanups.push(() => redis.stop())
    const proxy = await startProxy(redis.url)
    cleanups.push(() => proxy.close())
    const pool = 'lost-replies'
    const runs = new Map<number, number>()
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => {
      release = resolve
    })
    // The workers reach Redis directly; only the dispatcher goes through the proxy. The jobs are
    // held until the dispatcher has reconnected, so that no result can settle a submit before the
    // dispatcher decides whether to send its job again.
    const group = await startWorkers({
      redis: redis.url,
      pool,
      concurrency: 128,
      blockMs: 500,
      handler: async (n: number) => {
        runs.set(n, (runs.get(n) ?? 0) + 1)
        if (n >= 0) await gate
        return n
      },
    })
    cleanups.push(() => group.close())
    const d = new Dispatcher<number, number>({ redis: proxy.url, pool })
    cleanups.push(() => d.close())
    expect(await d.submit(-1)).toBe(-1)

    // The dispatches reach Redis and run, their replies (and the results' messages) are lost, then
    // the connection drops: the dispatcher cannot tell from the failure whether they ran.
    proxy.dropReplies()
    const submits = Array.from({ length: 50 }, (_, n) => d.submit(n, { timeoutMs: 30_000 }))
    await eventually(() => runs.size === 51)
    proxy.cut()
    await new Promise((r) => setTimeout(r, 300))
    proxy.restore()
    // A new submit goes only once the calls in doubt are resolved (and anything to resend sent,
    // ahead of it on the one worker's stream): when it is back, a job sent again has started.
    expect(await d.submit(-2)).toBe(-2)
    release()

    // Every submit gets its result, and no job was sent again: each ran once.
    expect(await Promise.all(submits)).toEqual(Array.from({ length: 50 }, (_, n) => n))
    expect([...runs.values()].every((count) => count === 1)).toBe(true)
    expect(runs.size).toBe(52)
  })

  it('the gateway answers requests made during a restart with 200 and 202, not 503', async () => {
    const redis = await startLocalRedis(['--appendonly', 'yes', '--appendfsync', 'always'])
    cleanups.push(() => redis.stop())
    const pool = 'gateway-restart'
    const runs = new Map<string, number>()
    const group = await startWorkers({
      redis: redis.url,
      pool,
      count: 2,
      // As above: a lease longer than the outage, so that no worker is taken for dead.
      leaseMs: 10_000,
      blockMs: 500,
      handler: async (req: { contents: { parts: { text: string }[] }[] }) => {
        const text = req.contents[0]?.parts[0]?.text ?? ''
        runs.set(text, (runs.get(text) ?? 0) + 1)
        return { candidates: [{ content: { role: 'model', parts: [{ text }] } }] }
      },
    })
    cleanups.push(() => group.close())
    const gateway = await spawnGateway({ redis: redis.url, pool })
    cleanups.push(() => gateway.child.kill('SIGTERM'))
    const post = (path: string, text: string) =>
      fetch(`${gateway.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contents: [{ role: 'user', parts: [{ text }] }] }),
      })
    expect((await post('/v1beta/models/gemini-2.5-flash:generateContent', 'warm-up')).status).toBe(200)

    // Callers that loop: each request waits for its answer, then the next goes.
    const statuses: number[] = []
    let n = 0
    let isRestarting = true
    const callers = Array.from({ length: 8 }, async (_, caller) => {
      while (isRestarting || n < 400) {
        const i = n++
        const isSeed = caller % 2 === 1
        const res = await post(
          isSeed ? '/generate' : '/v1beta/models/gemini-2.5-flash:generateContent',
          `r${i}`,
        )
        statuses.push(res.status)
        if (res.status >= 300) throw new Error(`request ${i} answered ${res.status}: ${await res.text()}`)
        await res.arrayBuffer().catch(() => undefined)
      }
    })
    await eventually(() => n >= 100)
    redis.kill()
    await new Promise((r) => setTimeout(r, 2_000))
    await redis.restart()
    isRestarting = false
    await Promise.all(callers)
    expect(statuses.filter((s) => s !== 200 && s !== 202)).toEqual([])
    expect(statuses.length).toBeGreaterThanOrEqual(400)
    // Every request ran once (a 202's job runs after its answer: wait for the last ones).
    await eventually(() => runs.size === n + 1)
    expect([...runs.values()].every((count) => count === 1)).toBe(true)
  })

  it("with onRedisUnavailable 'reject', a submit while Redis is away fails at once with REDIS_UNAVAILABLE", async () => {
    const redis = await startLocalRedis(['--appendonly', 'yes', '--appendfsync', 'always'])
    cleanups.push(() => redis.stop())
    const group = await startWorkers({ redis: redis.url, pool: 'reject', handler: async (n: unknown) => n })
    cleanups.push(() => group.close())
    const d = new Dispatcher({ redis: redis.url, pool: 'reject' })
    cleanups.push(() => d.close())
    const ok = { onSaturated: 'wait' } as const
    expect(await d.submit(1, ok)).toBe(1)
    redis.kill()
    const started = Date.now()
    const err = await d
      .submit(2, { timeoutMs: 60_000, onRedisUnavailable: 'reject' })
      .catch((e: unknown) => e)
    expect(isHedgeyardError(err, 'REDIS_UNAVAILABLE')).toBe(true)
    // At once: long before its 60 s timeout.
    expect(Date.now() - started).toBeLessThan(30_000)
    // The dispatcher-wide default does the same for every submit.
    const rejecting = new Dispatcher({ redis: redis.url, pool: 'reject', onRedisUnavailable: 'reject' })
    expect(
      () => new Dispatcher({ redis: redis.url, pool: 'reject', onRedisUnavailable: 'no' as 'wait' }),
    ).toThrow("onRedisUnavailable must be one of 'wait', 'reject'")
    await redis.restart()
    expect(await rejecting.submit(3, ok)).toBe(3)
    redis.kill()
    const refused = await rejecting.submit(4, { timeoutMs: 60_000 }).catch((e: unknown) => e)
    expect(isHedgeyardError(refused, 'REDIS_UNAVAILABLE')).toBe(true)
    await redis.restart()
    await rejecting.close()
  })

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
