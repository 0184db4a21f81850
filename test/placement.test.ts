import { client, redisUrl, spawnWorker, uniquePool, type WorkerProcess } from '@hedgeyard/testing/helpers'
import { Dispatcher, type HedgeyardError, poolKeys, startWorkers } from 'hedgeyard'
import { affinityKey, workerKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const c = client()
const running: WorkerProcess[] = []
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

describe('placement on workers of different concurrency', () => {
  it('gives a worker of concurrency 8 most of a batch, not the half a worker of concurrency 1 gets', async () => {
    const pool = uniquePool('mixed')
    for (const [idPrefix, concurrency] of [
      ['big', 8],
      ['small', 1],
    ] as const) {
      running.push(
        await spawnWorker({ pool, handler: 'speed.js', idPrefix, concurrency, env: { SPEED_MS: '1000' } }),
      )
    }
    const d = new Dispatcher<number, { workerId: string }>({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    const startedAt = Date.now()
    const replies = await Promise.all(
      Array.from({ length: 16 }, (_, i) => d.submit(i, { timeoutMs: 30_000 })),
    )
    const makespanMs = Date.now() - startedAt
    const perWorker: Record<string, number> = {}
    for (const r of replies) perWorker[r.workerId] = (perWorker[r.workerId] ?? 0) + 1
    // A measurement, not an assertion: about 2 s when the big worker takes 14, 8 s at 8 / 8.
    console.log(`16 jobs of 1 s on concurrency 8 + 1: ${JSON.stringify(perWorker)} in ${makespanMs} ms`)
    expect(perWorker['big-1'] ?? 0).toBeGreaterThanOrEqual(12)
    expect((perWorker['big-1'] ?? 0) + (perWorker['small-1'] ?? 0)).toBe(16)
  })
})

describe('copies on other hosts', () => {
  it("sends a hedge to another host rather than to another process on the slow worker's host", async () => {
    const pool = uniquePool('other-host')
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
    const start = async (idPrefix: string, host: string) => {
      const group = await startWorkers({ redis: redisUrl(), pool, handler, idPrefix, host })
      closers.push(() => group.close())
    }
    // The slow process and another one on host h1, a third process on host h2.
    await start('slow', 'h1')
    const d = new Dispatcher<number | string, string>({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    await d.submit('warm', { session: 'chat' })
    expect(await c.get(affinityKey(keys, 'chat'))).toBe('slow-1')
    await start('near', 'h1')
    await start('far', 'h2')
    expect(await c.hget(workerKey(keys, 'far-1'), 'host')).toBe('h2')
    const winners: string[] = []
    for (let i = 0; i < 6; i++) winners.push(await d.submit(i, { session: 'chat', hedge: { delayMs: 50 } }))
    // near-1 had as much room as far-1, but shares the slow worker's host.
    expect(winners).toEqual(Array(6).fill('far-1'))
  })

  it('hedgeyard worker takes the host from --host or HEDGEYARD_HOST', async () => {
    const pool = uniquePool('cli-host')
    const keys = poolKeys('hy', pool)
    running.push(
      await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'flag', extraArgs: ['--host', 'rack-1'] }),
    )
    running.push(
      await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'env', env: { HEDGEYARD_HOST: 'rack-2' } }),
    )
    expect(await c.hget(workerKey(keys, 'flag-1'), 'host')).toBe('rack-1')
    expect(await c.hget(workerKey(keys, 'env-1'), 'host')).toBe('rack-2')
  })

  it('refuses a host that is not a name, naming the option', async () => {
    const err = (await startWorkers({
      redis: redisUrl(),
      pool: uniquePool('bad-host'),
      handler: () => 1,
      host: 'rack 1/node 2',
    }).catch((e: unknown) => e)) as HedgeyardError
    expect(err.code).toBe('INVALID_ARGUMENT')
    expect(err.message).toContain('host must be')
  })
})
