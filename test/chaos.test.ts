import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import {
  eventually,
  FIXTURES,
  loadAndLengths,
  poolKeysInRedis,
  spawnWorker,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { startLocalRedis } from '@hedgeyard/testing/redis-server'
import { poolKeys } from 'hedgeyard'
import { workerKey } from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'

const LEASE_MS = 1_000
const WORKERS = 4
const PRODUCERS = 2
const SUBMITS_PER_PRODUCER = 2_500

interface ProducerOutcome {
  ok: number
  wrong: number
  deadLettered: number
  unavailableRetries: number
  errors: Record<string, number>
  answeredOnce: number
  count: number
}

const cleanups: (() => Promise<unknown> | unknown)[] = []
afterAll(async () => {
  for (const f of cleanups.reverse()) await f()
})

function startProducer(
  url: string,
  pool: string,
  name: string,
): { child: ChildProcess; result: Promise<ProducerOutcome> } {
  const child = spawn(
    process.execPath,
    [join(FIXTURES, 'chaos-producer.js'), url, pool, name, String(SUBMITS_PER_PRODUCER), '8'],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  const result = new Promise<ProducerOutcome>((resolve, reject) => {
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim()) as ProducerOutcome)
        : reject(new Error(`producer exited ${code}: ${out}`)),
    )
  })
  return { child, result }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('chaos', () => {
  it('answers every submit exactly once through worker kills, a SIGSTOP and a Redis restart with AOF', async () => {
    const redis = await startLocalRedis(['--appendonly', 'yes', '--appendfsync', 'everysec'])
    cleanups.push(() => redis.stop())
    const c = new Redis(redis.url, { maxRetriesPerRequest: 1 })
    c.on('error', () => {})
    cleanups.push(() => c.disconnect())
    const pool = 'chaos'
    const keys = poolKeys('hy', pool)
    const workers: WorkerProcess[] = []
    const everyWorker: WorkerProcess[] = []
    const worker = async (i: number) => {
      const w = await spawnWorker({
        pool,
        redis: redis.url,
        handler: 'echo.js',
        idPrefix: `cw${i}`,
        concurrency: 8,
        queueCapacity: 200,
        extraArgs: ['--lease-ms', String(LEASE_MS)],
      })
      everyWorker.push(w)
      return w
    }
    for (let i = 0; i < WORKERS; i++) workers.push(await worker(i))
    cleanups.push(() => Promise.all(everyWorker.map((w) => w.stop('SIGKILL'))))

    const startedAt = Date.now()
    const producers = Array.from({ length: PRODUCERS }, (_, i) => startProducer(redis.url, pool, `p${i}`))
    cleanups.push(() => {
      for (const p of producers) p.child.kill('SIGKILL')
    })
    let isDone = false
    const finished = Promise.all(producers.map((p) => p.result)).finally(() => {
      isDone = true
    })

    let kills = 0
    let maxRescueMs = 0
    let stopped = false
    let restarted = false
    let round = 0
    while (!isDone) {
      await sleep(1_200)
      if (isDone) break
      round++
      const i = round % WORKERS
      if (round === 3 && !stopped) {
        // Frozen past its lease: its jobs are rescued, its late completions fenced.
        stopped = true
        workers[i]?.child.kill('SIGSTOP')
        await sleep(LEASE_MS * 2.5)
        workers[i]?.child.kill('SIGCONT')
        continue
      }
      if (round === 6 && !restarted) {
        restarted = true
        c.disconnect()
        await redis.restart()
        c.connect().catch(() => {})
        continue
      }
      const victim = workers[i] as WorkerProcess
      await victim.stop('SIGKILL')
      kills++
      const killedAt = Date.now()
      const id = `cw${i}-1`
      if (kills % 2 === 0) {
        // Back before its lease runs out: it resumes the entries it had read.
        await sleep(Math.random() * LEASE_MS * 0.5)
      } else {
        // Back only after the others rescued its jobs and removed it from the pool.
        await eventually(async () => (await c.exists(workerKey(keys, id))) === 0, 10_000, 20)
        maxRescueMs = Math.max(maxRescueMs, Date.now() - killedAt)
      }
      workers[i] = await worker(i)
    }
    const outcomes = await finished
    const elapsedS = (Date.now() - startedAt) / 1000

    // Every worker alive again; wait until no dead worker is left to rescue, then drain them all.
    await eventually(async () => (await c.zcount(keys.alive, '-inf', Date.now())) === 0, 15_000)
    const rescuedLines = everyWorker.flatMap((w) =>
      w
        .output()
        .split('\n')
        .filter((l) => l.includes('rescued the jobs of dead workers')),
    )
    const moved = rescuedLines.reduce((n, l) => n + (JSON.parse(l).moved as number), 0)
    const fenced = everyWorker.reduce((n, w) => n + w.output().split('completion rejected').length - 1, 0)
    const codes = await Promise.all(workers.map((w) => w.stop('SIGTERM')))

    const total = outcomes.reduce((n, o) => n + o.count, 0)
    const ok = outcomes.reduce((n, o) => n + o.ok, 0)
    const dead = outcomes.reduce((n, o) => n + o.deadLettered, 0)
    const retries = outcomes.reduce((n, o) => n + o.unavailableRetries, 0)
    console.log(
      `chaos: ${total} submits in ${elapsedS.toFixed(1)} s; ${ok} ok, ${dead} dead-lettered; ${kills} kills, 1 SIGSTOP, 1 Redis restart; ` +
        `${moved} jobs rescued, ${fenced} late completions fenced, max rescue ${maxRescueMs} ms; ${retries} submits retried while Redis was down`,
    )
    expect(total).toBe(PRODUCERS * SUBMITS_PER_PRODUCER)
    for (const o of outcomes) {
      expect(o.answeredOnce).toBe(o.count)
      expect(o.wrong).toBe(0)
      expect(o.errors).toEqual({})
    }
    expect(ok + dead).toBe(total)
    expect(kills).toBeGreaterThanOrEqual(3)
    codes.forEach((code, i) => {
      // A drain that failed says why in the worker's last log lines.
      expect(code, `worker ${i} exited ${code}:\n${workers[i]?.output().slice(-3000)}`).toBe(0)
    })
    for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    for (const key of await poolKeysInRedis(c, pool)) {
      if (key.endsWith(':dead')) continue
      // Results, bindings, claims and producer counters: all expire.
      expect(await c.pttl(key), key).toBeGreaterThan(0)
    }
  }, 240_000)
})
