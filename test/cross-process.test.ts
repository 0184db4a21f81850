import { spawn } from 'node:child_process'
import { join } from 'node:path'
import {
  CLI,
  client,
  eventually,
  FIXTURES,
  isKeyOf,
  loadAndLengths,
  poolKeysInRedis,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, poolKeys } from 'hedgeyard'
import { affinityKey, CONSUMER_GROUP, queueKey, resultKey, sentKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const c = client()
const running: WorkerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
})
afterAll(() => c.disconnect())

describe('worker processes', () => {
  it('answers 1,000 concurrent submits across 3 worker processes, each with its own result', async () => {
    const pool = uniquePool('x3')
    for (let i = 0; i < 3; i++)
      running.push(
        await spawnWorker({ pool, handler: 'echo.js', count: 2, concurrency: 16, queueCapacity: 200 }),
      )
    const d = new Dispatcher<{ n: number; delayMs: number }, { echo: { n: number }; workerId: string }>({
      redis: redisUrl(),
      pool,
    })
    try {
      const results = await Promise.all(
        Array.from({ length: 1_000 }, (_, n) =>
          d.submit({ n, delayMs: n % 7 }, { session: `s${n % 50}`, timeoutMs: 30_000 }),
        ),
      )
      expect(results.map((res) => res.echo.n)).toEqual(Array.from({ length: 1_000 }, (_, n) => n))
      const byWorker = new Map<string, number>()
      for (const r of results) byWorker.set(r.workerId, (byWorker.get(r.workerId) ?? 0) + 1)
      expect(byWorker.size).toBe(6)
      const pids = new Set([...byWorker.keys()].map((id) => id.split('-').at(-2)))
      expect(pids.size).toBe(3)
      const metrics = await d.workerMetrics()
      expect(metrics.reduce((n, m) => n + m.processed, 0)).toBe(1_000)
      await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
    } finally {
      await d.close()
    }
  })

  it('drains on SIGTERM: jobs in flight finish, then the workers leave the pool', async () => {
    const pool = uniquePool('term')
    const w = await spawnWorker({ pool, handler: 'echo.js', count: 2, concurrency: 2 })
    const d = new Dispatcher({ redis: redisUrl(), pool })
    try {
      const jobs = Array.from({ length: 6 }, (_, n) => d.submit({ n, delayMs: 1_000 }, { timeoutMs: 10_000 }))
      // Every job queued or running before the signal (a fixed pause lost that race on a loaded
      // machine, more often on a cluster, whose connections take longer to become ready).
      await eventually(async () => (await loadAndLengths(c, pool)).reduce((n, w) => n + w.load, 0) === 6)
      const code = await w.stop('SIGTERM')
      expect(code).toBe(0)
      const results = (await Promise.all(jobs)) as { echo: { n: number } }[]
      expect(results.map((r) => r.echo.n)).toEqual([0, 1, 2, 3, 4, 5])
      // Nothing of the workers is left: no hash, no stream, no load or lease entry (the results,
      // bindings and the producer's dispatch receipts expire on their own).
      const keys = poolKeys('hy', pool)
      const left = (await poolKeysInRedis(c, pool)).filter(
        (k) => !isKeyOf(k, keys, resultKey) && !isKeyOf(k, keys, affinityKey) && !isKeyOf(k, keys, sentKey),
      )
      expect(left).toEqual([])
      const err = await d.submit(1, { timeoutMs: 1_000 }).catch((e: unknown) => e)
      expect((err as { code?: string }).code).toBe('NO_WORKERS')
    } finally {
      await d.close()
    }
  })

  it('a SIGTERM that arrives while the workers are starting drains them once started, exit code 0', async () => {
    const pool = uniquePool('earlyterm')
    const args = [
      CLI,
      'worker',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      '--handler',
      join(FIXTURES, 'slow-load.js'),
    ]
    const child = spawn(process.execPath, args, {
      env: { ...process.env, HEDGEYARD_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (d) => (output += d))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    await eventually(() => output.includes('loading the handler module'), 15_000)
    child.kill('SIGTERM')
    // Node's default for SIGTERM would end the process at once, with no exit code.
    expect(await exited, output).toBe(0)
    expect(output).toContain('draining workers')
    expect(output).toContain('workers started')
    const keys = poolKeys('hy', pool)
    const left = (await poolKeysInRedis(c, pool)).filter((k) => k !== keys.producers)
    expect(left).toEqual([])
  })

  it('a worker restarted with the same id runs the jobs it had read before it was killed', async () => {
    const pool = uniquePool('restart')
    const keys = poolKeys('hy', pool)
    const first = await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'stable', concurrency: 4 })
    const d = new Dispatcher({ redis: redisUrl(), pool })
    try {
      const jobs = Array.from({ length: 4 }, (_, n) => d.submit({ n, delayMs: 2_000 }, { timeoutMs: 20_000 }))
      await eventually(async () => (await c.xpending(queueKey(keys, 'stable-1'), CONSUMER_GROUP))[0] === 4)
      await first.stop('SIGKILL')
      running.push(await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'stable', concurrency: 4 }))
      const results = (await Promise.all(jobs)) as { echo: { n: number }; workerId: string }[]
      expect(results.map((r) => r.echo.n)).toEqual([0, 1, 2, 3])
      expect(results.every((r) => r.workerId === 'stable-1')).toBe(true)
      await eventually(async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0))
    } finally {
      await d.close()
    }
  })
})
