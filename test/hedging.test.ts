import {
  client,
  eventually,
  gate,
  loadAndLengths,
  poolKeysInRedis,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, type HedgeyardError, isHedgeyardError, poolKeys, startWorkers } from 'hedgeyard'
import { affinityKey, CONSUMER_GROUP, queueKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const c = client()
const running: WorkerProcess[] = []
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

type Reply = { workerId: string; attempt: number }

function dispatcher(pool: string, hedging: Record<string, number> = {}): Dispatcher<unknown, Reply> {
  const d = new Dispatcher<unknown, Reply>({ redis: redisUrl(), pool, hedging })
  closers.push(() => d.close())
  return d
}

async function speedWorker(
  pool: string,
  idPrefix: string,
  speedMs: number,
  concurrency = 4,
  leaseMs?: number,
) {
  const w = await spawnWorker({
    pool,
    handler: 'speed.js',
    idPrefix,
    concurrency,
    env: { SPEED_MS: String(speedMs) },
    ...(leaseMs === undefined ? {} : { extraArgs: ['--lease-ms', String(leaseMs)] }),
  })
  running.push(w)
  return w
}

async function settled(pool: string) {
  await eventually(
    async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0),
    10_000,
  )
}

describe('hedged submits across worker processes', () => {
  it('answers in about the fast worker time when the first copy sits on a slow worker, and cancels the slow copy', async () => {
    const pool = uniquePool('hedge')
    const keys = poolKeys('hy', pool)
    const slow = await speedWorker(pool, 'slow', 6_000)
    const d = dispatcher(pool)
    // Bind the session to the slow worker while it is the only one.
    const warm = d.submit({ warm: true }, { session: 'chat' }).catch(() => undefined)
    await eventually(async () => (await c.get(affinityKey(keys, 'chat'))) === 'slow-1')
    await speedWorker(pool, 'fast', 20)
    const startedAt = Date.now()
    const res = await d.submit({ q: 1 }, { session: 'chat', hedge: { delayMs: 100 }, timeoutMs: 20_000 })
    const elapsedMs = Date.now() - startedAt
    expect(res).toEqual({ workerId: 'fast-1', attempt: 2 })
    expect(elapsedMs).toBeLessThan(2_000)
    // The slow copy's signal fired and its slot is free long before its 6 s would have passed (6 s,
    // so that on a loaded machine the cancel still has seconds to arrive before the job ends).
    await eventually(
      () => /aborted \S+ attempt 1: cancelled: another copy of this job won/.test(slow.output()),
      3_000,
    )
    await eventually(async () => {
      const m = (await d.workerMetrics()).find((w) => w.workerId === 'slow-1')
      return m?.inflight === 1 // only the warm-up job still runs
    }, 3_000)
    expect(d.stats()).toMatchObject({ hedgesSent: 1, hedgesWon: 1 })
    // The hedge copy went elsewhere on purpose: the session stays bound where it was.
    expect(await c.get(affinityKey(keys, 'chat'))).toBe('slow-1')
    await warm
    await settled(pool)
  })

  it('removes a copy that had not started from its stream, releasing its load in the same step', async () => {
    const pool = uniquePool('unstarted')
    const keys = poolKeys('hy', pool)
    await speedWorker(pool, 'busy', 3_000, 1)
    const d = dispatcher(pool)
    const blocker = d.submit({ block: true }, { session: 'x' }).catch(() => undefined)
    await eventually(async () => (await c.xpending(queueKey(keys, 'busy-1'), CONSUMER_GROUP))[0] === 1)
    await speedWorker(pool, 'free', 10)
    // Copy 1 queues behind the blocker (affinity); copy 2 goes to the free worker and wins.
    const res = await d.submit({ q: 2 }, { session: 'x', hedge: { delayMs: 50 }, timeoutMs: 10_000 })
    expect(res.workerId).toBe('free-1')
    await eventually(async () => (await c.xlen(queueKey(keys, 'busy-1'))) === 1)
    expect(await c.zscore(keys.load, 'busy-1')).toBe('1')
    expect(d.stats().hedgesCancelled).toBe(1)
    await blocker
    await settled(pool)
  })

  it('gives the caller the last error when every copy fails', async () => {
    const pool = uniquePool('allfail')
    await speedWorker(pool, 'a', 10)
    await speedWorker(pool, 'b', 10)
    await speedWorker(pool, 'c', 10)
    const d = dispatcher(pool)
    const err = (await d
      .submit({ fail: 'retryable' }, { hedge: { delayMs: 1_000, maxAttempts: 3 } })
      .catch((e: unknown) => e)) as HedgeyardError
    expect(err.code).toBe('HANDLER_ERROR')
    expect(err.isRetryable).toBe(true)
    // Each retryable failure launched the next copy at once, to a worker no copy had been on.
    expect(err.message).toMatch(/failed on [abc]-1/)
    const processed = (await d.workerMetrics()).map((m) => m.errors)
    expect(processed).toEqual([1, 1, 1])
    await settled(pool)
  })
})

describe('racing copies whose worker dies', () => {
  it('runs a tied copy on the worker rescue moves it to when the worker that claimed it died', async () => {
    const pool = uniquePool('tieddead')
    const keys = poolKeys('hy', pool)
    // Alone in the pool, the doomed worker gets the only copy of the tied job, claims it and runs it.
    const doomed = await speedWorker(pool, 'doomed', 60_000, 4, 1_000)
    const d = dispatcher(pool)
    const job = d.submit({}, { hedge: { mode: 'tied' }, timeoutMs: 30_000 })
    await eventually(async () => (await c.xpending(queueKey(keys, 'doomed-1'), CONSUMER_GROUP))[0] === 1)
    await eventually(async () => (await poolKeysInRedis(c, pool)).some((k) => k.includes(':claim:')))
    await speedWorker(pool, 'heir', 20, 4, 1_000)
    await doomed.stop('SIGKILL')
    // Rescue moves the copy to the live worker, whose claim takes over the dead worker's.
    expect(await job).toEqual({ workerId: 'heir-1', attempt: 2 })
    await settled(pool)
  })

  it('lets another copy win after one copy of a hedged job was dead-lettered', async () => {
    const pool = uniquePool('hedgedead')
    const keys = poolKeys('hy', pool)
    const doomed = await speedWorker(pool, 'doomed', 60_000, 4, 1_000)
    const d = dispatcher(pool)
    // Bind the session to the doomed worker while it is the only one, so that copy 1 goes there.
    const warm = d.submit({ warm: true }, { session: 'chat', timeoutMs: 30_000 }).catch(() => undefined)
    await eventually(async () => (await c.get(affinityKey(keys, 'chat'))) === 'doomed-1')
    await speedWorker(pool, 'steady', 6_000, 4, 1_000)
    const job = d.submit({}, { session: 'chat', hedge: { delayMs: 100 }, maxAttempts: 1, timeoutMs: 30_000 })
    // Both copies run: copy 1 on the doomed worker, the hedge on the steady one.
    await eventually(async () => (await c.xpending(queueKey(keys, 'doomed-1'), CONSUMER_GROUP))[0] === 2)
    await eventually(async () => (await c.xpending(queueKey(keys, 'steady-1'), CONSUMER_GROUP))[0] === 1)
    await doomed.stop('SIGKILL')
    // Rescue dead-letters copy 1 (its one attempt was used); that answers for copy 1 only.
    expect(await job).toEqual({ workerId: 'steady-1', attempt: 2 })
    expect(await c.xlen(keys.dead)).toBe(1)
    await warm
    await settled(pool)
  })
})

describe('hedging in one process', () => {
  it('keeps hedges within the budget under sustained load', async () => {
    const pool = uniquePool('budget')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 4,
      concurrency: 16,
      handler: async () => new Promise((r) => setTimeout(() => r('ok'), 5 + Math.random() * 10)),
    })
    closers.push(() => group.close())
    const d = dispatcher(pool, { budgetRatio: 0.1, budgetBurst: 10 })
    const n = 1_000
    // A 0 ms delay would hedge every request; the budget must hold it to ~10% (+ the burst).
    for (let i = 0; i < n; i += 50) {
      await Promise.all(
        Array.from({ length: 50 }, () => d.submit(i, { hedge: { delayMs: 0 }, onSaturated: 'wait' })),
      )
    }
    const s = d.stats()
    expect(s.succeeded).toBe(n)
    expect(s.hedgesSent).toBeGreaterThan(0)
    expect(s.hedgesSent).toBeLessThanOrEqual(n * 0.1 + 10)
    expect(s.hedgesDenied).toBeGreaterThan(0)
    await settled(pool)
  })

  it('tied mode runs each job once when the first copy starts promptly', async () => {
    const pool = uniquePool('tied')
    const runs = new Map<string, number>()
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 2,
      concurrency: 4,
      handler: async (_req: unknown, ctx) => {
        runs.set(ctx.jobId, (runs.get(ctx.jobId) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, 5))
        return ctx.workerId
      },
    })
    closers.push(() => group.close())
    const d = dispatcher(pool)
    for (let i = 0; i < 40; i++) await d.submit(i, { hedge: { mode: 'tied' } })
    expect(runs.size).toBe(40)
    expect([...runs.values()].every((r) => r === 1)).toBe(true)
    await settled(pool)
    const claims = (await poolKeysInRedis(c, pool)).filter((k) => k.includes(':claim:'))
    expect(claims).toHaveLength(40)
    for (const key of claims.slice(0, 5)) expect(await c.pttl(key)).toBeGreaterThan(0)
  })

  it('a tied copy read ahead (prefetch) by a busy worker is left to its twin on an idle worker', async () => {
    const pool = uniquePool('tiedahead')
    const ran: string[] = []
    const hold = gate()
    // Two workers with one slot each, each reading up to three jobs ahead.
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      idPrefix: 'ahead',
      count: 2,
      concurrency: 1,
      prefetch: 3,
      handler: async (req: { hold?: boolean }, ctx) => {
        ran.push(`${ctx.workerId} ${req.hold ? 'held' : 'tied'}`)
        if (req.hold) await hold.wait
        return ctx.workerId
      },
    })
    closers.push(() => group.close())
    const d = new Dispatcher<unknown, string>({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    const held = d.submit({ hold: true })
    await eventually(async () => ran.length === 1)
    const busy = ran[0]?.split(' ')[0] as string
    const idle = busy === 'ahead-1' ? 'ahead-2' : 'ahead-1'
    // The pair goes to both workers; the busy one reads its copy ahead while its slot is taken.
    // Claimed only when it starts, that copy cannot keep the idle twin from running the job.
    const tied = await d.submit({ tied: true }, { hedge: { mode: 'tied' }, timeoutMs: 5_000 })
    expect(tied).toBe(idle)
    hold.open()
    expect(await held).toBe(busy)
    await settled(pool)
    expect(ran.sort()).toEqual([`${busy} held`, `${idle} tied`].sort())
  })

  it('retries a retryable failure on another worker and not a fatal one', async () => {
    const pool = uniquePool('retry')
    const attempts: string[] = []
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 2,
      handler: (req: unknown, ctx) => {
        attempts.push(`${ctx.attempt}@${ctx.workerId}`)
        if (ctx.attempt === 1)
          throw Object.assign(new Error('rate limited'), { retryable: req === 'retryable' })
        return ctx.workerId
      },
    })
    closers.push(() => group.close())
    const d = dispatcher(pool)
    const worker = await d.submit('retryable', { retry: { maxAttempts: 2, backoffMs: 10 } })
    expect(attempts).toHaveLength(2)
    const [first, second] = attempts as [string, string]
    expect(second).toBe(`2@${worker}`)
    expect(first.split('@')[1]).not.toBe(worker)
    const fatal = await d.submit('fatal', { retry: { maxAttempts: 3 } }).catch((e: unknown) => e)
    expect(isHedgeyardError(fatal, 'HANDLER_ERROR')).toBe(true)
    expect(attempts).toHaveLength(3)
    expect(d.stats().retriesSent).toBe(1)
  })

  it("sends a hedge to another process rather than to the slow worker's sibling", async () => {
    const pool = uniquePool('other-process')
    const keys = poolKeys('hy', pool)
    const handler = async (_req: unknown, ctx: { workerId: string; signal: AbortSignal }) => {
      if (ctx.workerId.startsWith('slow-')) {
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 2_000)
          ctx.signal.addEventListener('abort', () => {
            clearTimeout(t)
            resolve(undefined)
          })
        })
      }
      return ctx.workerId
    }
    // Two workers in the slow process, one in the fast one (a group's ids are <idPrefix>-<n>).
    const slow = await startWorkers({ redis: redisUrl(), pool, handler, idPrefix: 'slow', count: 2 })
    closers.push(() => slow.close())
    const d = dispatcher(pool)
    await d.submit('warm', { session: 'chat' })
    const bound = (await c.get(affinityKey(keys, 'chat'))) as string
    const fast = await startWorkers({ redis: redisUrl(), pool, handler, idPrefix: 'fast', count: 1 })
    closers.push(() => fast.close())
    const winners: string[] = []
    for (let i = 0; i < 6; i++) {
      // This handler answers with the worker id, not the Reply the shared dispatcher is typed with.
      winners.push((await d.submit(i, { session: 'chat', hedge: { delayMs: 50 } })) as unknown as string)
      expect(await c.get(affinityKey(keys, 'chat'))).toBe(bound)
    }
    // The bound slow worker's sibling had as much room, but shares its process.
    expect(winners).toEqual(Array(6).fill('fast-1'))
  })

  it('says so when the hedging budget refused a retry the submit had attempts left for', async () => {
    const pool = uniquePool('retry-budget')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 3,
      breaker: false,
      handler: () => {
        throw Object.assign(new Error('upstream unavailable'), { retryable: true })
      },
    })
    closers.push(() => group.close())
    // One extra copy in the budget, and no more earned: the second retry is refused.
    const d = dispatcher(pool, { budgetBurst: 1, budgetRatio: 0 })
    const err = (await d
      .submit(1, { retry: { maxAttempts: 3, backoffMs: 0 } })
      .catch((e: unknown) => e)) as HedgeyardError
    expect(err.code).toBe('HANDLER_ERROR')
    expect(err.isRetryDenied).toBe(true)
    expect(err.message).toContain('no retry: the hedging budget')
    expect(d.stats()).toMatchObject({ retriesSent: 1, hedgesDenied: 1 })
    // With room in the budget the same failure says nothing of it.
    const roomy = dispatcher(pool, { budgetBurst: 10 })
    const plain = (await roomy
      .submit(1, { retry: { maxAttempts: 2, backoffMs: 0 } })
      .catch((e: unknown) => e)) as HedgeyardError
    expect(plain.isRetryDenied).toBe(false)
    expect(plain.message).not.toContain('budget')
  })

  it("'auto' uses a high percentile of recent latencies once there are enough samples", async () => {
    const pool = uniquePool('auto')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      handler: async (ms: unknown) => new Promise((r) => setTimeout(() => r(ms), ms as number)),
    })
    closers.push(() => group.close())
    const d = dispatcher(pool, { minSamples: 20, fallbackDelayMs: 77 })
    expect(d.stats().autoDelayMs).toBe(77)
    for (let i = 0; i < 20; i++) await d.submit(i < 18 ? 5 : 60)
    const auto = d.stats().autoDelayMs
    expect(auto).toBeGreaterThanOrEqual(55)
    expect(auto).toBeLessThan(200)
  })

  it('refuses bad hedge and retry options, naming them', async () => {
    const d = dispatcher(uniquePool('badhedge'))
    const cases: [object, RegExp][] = [
      [{ hedge: { maxAttempts: 6 } }, /hedge.maxAttempts must be an integer between 2 and 5 \(got 6\)/],
      [{ hedge: { delayMs: -1 } }, /hedge.delayMs must be an integer between 0 and 2147483647 ms/],
      [{ hedge: { delayMs: 2 ** 31 } }, /hedge.delayMs must be an integer between 0 and 2147483647 ms/],
      [{ retry: { backoffMs: 2 ** 31 } }, /retry.backoffMs must be an integer between 0 and 2147483647 ms/],
      [{ hedge: { mode: 'both' } }, /hedge.mode must be one of 'race', 'tied'/],
      [{ hedge: { dely: 5 } }, /hedge: unknown option 'dely'/],
      [{ retry: { maxAttempts: 0 } }, /retry.maxAttempts must be an integer between 1 and 5/],
    ]
    for (const [options, message] of cases) {
      const err = await d.submit(1, options).catch((e: unknown) => e)
      expect(isHedgeyardError(err, 'INVALID_ARGUMENT')).toBe(true)
      expect((err as Error).message).toMatch(message)
    }
    expect(() => new Dispatcher({ redis: redisUrl(), pool: 'x', hedging: { budgetRatio: 2 } })).toThrow(
      /hedging.budgetRatio must be a number between 0 and 1 \(got 2\)/,
    )
  })

  it('retries a tied pair after a retryable failure (the retry is a new pair with its own claim)', async () => {
    const pool = uniquePool('tiedretry')
    const runs: string[] = []
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 3,
      handler: (_req: unknown, ctx) => {
        runs.push(`${ctx.attempt}@${ctx.workerId}`)
        if (ctx.attempt === 1) throw Object.assign(new Error('overloaded'), { retryable: true })
        return ctx.attempt
      },
    })
    closers.push(() => group.close())
    const d = dispatcher(pool)
    expect(
      await d.submit('x', {
        hedge: { mode: 'tied' },
        retry: { maxAttempts: 2, backoffMs: 0 },
        timeoutMs: 5_000,
      }),
    ).toBe(2)
    expect(runs.filter((r) => r.startsWith('1@'))).toHaveLength(1)
    expect(runs.filter((r) => r.startsWith('2@'))).toHaveLength(1)
    await settled(pool)
  })

  it('does not count, nor charge the budget for, a hedge no worker could take', async () => {
    const pool = uniquePool('onlyone')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      handler: async (req: unknown) => new Promise((r) => setTimeout(() => r(req), 500)),
    })
    closers.push(() => group.close())
    const d = dispatcher(pool, { budgetBurst: 2, budgetRatio: 0.01 })
    // One worker, and a hedge must go to another: every hedge is refused.
    for (let i = 0; i < 4; i++) expect(await d.submit(i, { hedge: { delayMs: 10, maxAttempts: 2 } })).toBe(i)
    const s = d.stats()
    expect(s.hedgesSent).toBe(0)
    expect(s.saturated).toBe(4)
    // The tokens came back: none was denied for want of budget.
    expect(s.hedgesDenied).toBe(0)
  })
})
