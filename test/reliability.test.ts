import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import {
  CLI,
  client,
  eventually,
  isKeyOf,
  loadAndLengths,
  poolKeysInRedis,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, isHedgeyardError, poolKeys, startWorkers } from 'hedgeyard'
import {
  CONSUMER_GROUP,
  decodeEntry,
  type JobEntry,
  queueKey,
  resultKey,
  workerKey,
} from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const c = client()
const running: WorkerProcess[] = []
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const w of running.splice(0)) {
    if (w.child.signalCode === 'SIGSTOP' || w.child.exitCode === null) w.child.kill('SIGCONT')
    await w.stop('SIGKILL')
  }
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

const LEASE_MS = 1_000
type Echo = { echo: { n: number }; workerId: string; attempt: number; startedAt: number; jobId: string }

function dispatcher(pool: string, extra: { maxAttempts?: number } = {}): Dispatcher<unknown, Echo> {
  const d = new Dispatcher<unknown, Echo>({ redis: redisUrl(), pool, ...extra })
  closers.push(() => d.close())
  return d
}

async function worker(
  pool: string,
  idPrefix: string,
  extra: { concurrency?: number; handler?: string } = {},
) {
  const w = await spawnWorker({
    pool,
    handler: extra.handler ?? 'echo.js',
    idPrefix,
    concurrency: extra.concurrency ?? 4,
    extraArgs: ['--lease-ms', String(LEASE_MS)],
  })
  running.push(w)
  return w
}

async function settledPool(pool: string): Promise<void> {
  await eventually(
    async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0),
    15_000,
  )
}

describe('rescue of dead workers', () => {
  it("runs a killed worker's jobs, read and unread, on a live worker within twice the lease", async () => {
    const pool = uniquePool('rescue')
    const keys = poolKeys('hy', pool)
    const victim = await worker(pool, 'victim', { concurrency: 2 })
    const d = dispatcher(pool)
    // Four jobs on the only worker: two running (read), two waiting in its stream (never read).
    const jobs = [0, 1, 2, 3].map((n) => d.submit({ n, delayMs: 60_000 }, { timeoutMs: 6_000 }))
    await eventually(async () => (await c.xpending(queueKey(keys, 'victim-1'), CONSUMER_GROUP))[0] === 2)
    await worker(pool, 'survivor', { concurrency: 4 })
    await victim.stop('SIGKILL')
    const killedAt = Date.now()
    // The copies are long too; the survivor only needs to start them.
    const startedAt = await eventually(async () => {
      const pending = (await c.xpending(queueKey(keys, 'survivor-1'), CONSUMER_GROUP))[0] as number
      return pending === 4 ? Date.now() : 0
    }, 10_000)
    const rescueDelayMs = startedAt - killedAt
    console.log(`rescue: 4 jobs running again ${rescueDelayMs} ms after SIGKILL (lease ${LEASE_MS} ms)`)
    expect(rescueDelayMs).toBeLessThanOrEqual(2 * LEASE_MS + 500)
    const entries = (await c.xrange(queueKey(keys, 'survivor-1'), '-', '+')) as [string, string[]][]
    // The two it had started count as attempts; the two it never read do not.
    expect(entries.map(([id, f]) => (decodeEntry(id, f) as JobEntry).attempt)).toEqual([2, 2, 1, 1])
    // The dead worker is gone from the pool.
    expect(await c.exists(workerKey(keys, 'victim-1'), queueKey(keys, 'victim-1'))).toBe(0)
    expect(await c.zscore(keys.load, 'victim-1')).toBeNull()
    for (const job of jobs) job.catch(() => {})
  })

  it('dead-letters a job past maxAttempts and answers its caller DEAD_LETTERED', async () => {
    const pool = uniquePool('dlq')
    const keys = poolKeys('hy', pool)
    const victim = await worker(pool, 'victim')
    const d = dispatcher(pool, { maxAttempts: 1 })
    const job = d
      .submit({ n: 7, delayMs: 60_000 }, { timeoutMs: 30_000, session: 'chat-9' })
      .catch((e: unknown) => e)
    await eventually(async () => (await c.xpending(queueKey(keys, 'victim-1'), CONSUMER_GROUP))[0] === 1)
    await worker(pool, 'survivor')
    await victim.stop('SIGKILL')
    const err = await job
    expect(isHedgeyardError(err, 'DEAD_LETTERED')).toBe(true)
    expect((err as Error).message).toMatch(/worker victim-1 was lost; 1 attempts used/)
    const env = { ...process.env, HEDGEYARD_REDIS_URL: redisUrl() }
    const list = await run(process.execPath, [CLI, 'dead', 'list', '--pool', pool, '--json'], { env })
    const letters = JSON.parse(list.stdout) as {
      deadId: string
      payload: string
      reason: string
      session: string
    }[]
    expect(letters).toHaveLength(1)
    expect(letters[0]).toMatchObject({ payload: '{"n":7,"delayMs":60000}', session: 'chat-9' })
    // Retried, it runs as a new job on the live worker; the stream of dead letters empties.
    const retry = await run(process.execPath, [CLI, 'dead', 'retry', '--pool', pool, '--all'], { env })
    expect(retry.stdout).toMatch(/retried \S+ as job \S+ on survivor-1\n1 dead letters retried/)
    expect(await c.xlen(keys.dead)).toBe(0)
    expect(await c.xlen(queueKey(keys, 'survivor-1'))).toBe(1)
    await c.xadd(keys.dead, '*', 'reason', 'test', 'id', 'x')
    const purge = await run(process.execPath, [CLI, 'dead', 'purge', '--pool', pool, '--all'], { env })
    expect(purge.stdout).toMatch(/1 dead letters deleted/)
  })

  it('fences a worker that comes back after being declared dead (SIGSTOP, SIGCONT)', async () => {
    const pool = uniquePool('fence')
    const keys = poolKeys('hy', pool)
    const frozen = await worker(pool, 'frozen')
    const d = dispatcher(pool)
    const job = d.submit({ n: 1, delayMs: 1_500 }, { timeoutMs: 20_000 })
    await eventually(async () => (await c.xpending(queueKey(keys, 'frozen-1'), CONSUMER_GROUP))[0] === 1)
    frozen.child.kill('SIGSTOP')
    await worker(pool, 'other')
    const res = await job
    expect(res).toMatchObject({ workerId: 'other-1', attempt: 2 })
    frozen.child.kill('SIGCONT')
    // Its own run ends 1.5 s after it started; its completion must be refused, not stored.
    await eventually(() => frozen.output().includes('completion rejected'), 10_000)
    expect(await c.get(resultKey(keys, res.jobId))).toMatch(/"workerId":"other-1"/)
    await settledPool(pool)
    const processed = await c.hget(workerKey(keys, 'other-1'), 'processed')
    expect(processed).toBe('1')
  })

  it('a worker started after every worker of the pool died rescues their jobs onto itself', async () => {
    const pool = uniquePool('allgone')
    const keys = poolKeys('hy', pool)
    const victim = await worker(pool, 'victim', { concurrency: 1 })
    const d = dispatcher(pool)
    // One job running on the pool's only worker, two waiting behind it.
    const jobs = [0, 1, 2].map((n) => d.submit({ n, delayMs: n === 0 ? 2_000 : 10 }, { timeoutMs: 30_000 }))
    await eventually(async () => (await c.xpending(queueKey(keys, 'victim-1'), CONSUMER_GROUP))[0] === 1)
    await victim.stop('SIGKILL')
    // No live process is left to run rescue: the jobs wait in the dead worker's stream.
    await eventually(async () => Number(await c.zscore(keys.alive, 'victim-1')) < Date.now(), 10_000)
    expect(await c.xlen(queueKey(keys, 'victim-1'))).toBe(3)
    await worker(pool, 'fresh')
    const results = await Promise.all(jobs)
    expect(results.map((r) => [r.workerId, r.attempt])).toEqual([
      ['fresh-1', 2],
      ['fresh-1', 1],
      ['fresh-1', 1],
    ])
    expect(await c.exists(workerKey(keys, 'victim-1'))).toBe(0)
  })

  it('does not take a long job from a worker that is alive', async () => {
    const pool = uniquePool('long')
    const keys = poolKeys('hy', pool)
    await worker(pool, 'slow')
    await worker(pool, 'idle')
    const d = dispatcher(pool)
    const res = await d.submit({ n: 1, delayMs: 3 * LEASE_MS }, { timeoutMs: 20_000 })
    expect(res.attempt).toBe(1)
    const processed =
      Number(await c.hget(workerKey(keys, 'slow-1'), 'processed')) +
      Number(await c.hget(workerKey(keys, 'idle-1'), 'processed'))
    expect(processed).toBe(1)
  })
})

describe('drain', () => {
  it('`hedgeyard drain` from another host hands back unread jobs, finishes running ones and exits the worker', async () => {
    const pool = uniquePool('drain')
    const keys = poolKeys('hy', pool)
    const leaving = await worker(pool, 'leaving', { concurrency: 1 })
    const d = dispatcher(pool)
    // Long enough that the drain is noticed (next heartbeat) while the first job still runs.
    const jobs = [0, 1, 2].map((n) => d.submit({ n, delayMs: 2_500 }, { timeoutMs: 20_000 }))
    await eventually(async () => (await c.xlen(queueKey(keys, 'leaving-1'))) === 3)
    await worker(pool, 'staying', { concurrency: 4 })
    const out = await run(process.execPath, [
      CLI,
      'drain',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      'leaving-1',
    ])
    expect(out.stdout).toBe('draining leaving-1\n')
    const results = await Promise.all(jobs)
    expect(results.map((r) => r.echo.n)).toEqual([0, 1, 2])
    // The running job stayed on the draining worker; the unread ones moved, attempt unchanged. How
    // many ran before the drain was noticed depends on the machine (a busy one takes longer than a
    // job to start the CLI and reach the next heartbeat): the first one always, then at least one
    // was handed back.
    const onLeaving = results.filter((r) => r.workerId === 'leaving-1').length
    expect(onLeaving).toBeGreaterThanOrEqual(1)
    expect(results.filter((r) => r.workerId === 'staying-1')).toHaveLength(3 - onLeaving)
    expect(onLeaving).toBeLessThan(3)
    expect(results.every((r) => r.attempt === 1)).toBe(true)
    expect(await leaving.stop('SIGCONT')).toBe(0)
    expect(await c.exists(workerKey(keys, 'leaving-1'))).toBe(0)
    const missing = await run(process.execPath, [
      CLI,
      'drain',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      'nobody',
    ]).catch((e: { stderr: string }) => e)
    expect((missing as { stderr: string }).stderr).toMatch(/error INVALID_ARGUMENT: no such worker in pool/)
  })

  it('a rolling restart of every worker under load loses nothing', async () => {
    const pool = uniquePool('rolling')
    const generation = [await worker(pool, 'g1a'), await worker(pool, 'g1b')]
    const d = dispatcher(pool)
    let stop = false
    const submitted: Promise<Echo>[] = []
    const load = (async () => {
      let n = 0
      while (!stop) {
        submitted.push(d.submit({ n: n++, delayMs: 20 }, { timeoutMs: 30_000, onSaturated: 'wait' }))
        await new Promise((r) => setTimeout(r, 4))
      }
    })()
    for (const [i, old] of generation.entries()) {
      await new Promise((r) => setTimeout(r, 300))
      await worker(pool, `g2${i}`)
      expect(await old.stop('SIGTERM')).toBe(0)
    }
    await new Promise((r) => setTimeout(r, 300))
    stop = true
    await load
    const results = await Promise.allSettled(submitted)
    const failed = results.filter((r) => r.status === 'rejected')
    expect(failed).toEqual([])
    expect(results.length).toBeGreaterThan(100)
    await settledPool(pool)
  })
})

describe('bad input on the worker side', () => {
  it('moves an entry that cannot be decoded to the dead letters and keeps running', async () => {
    const pool = uniquePool('garbage')
    const keys = poolKeys('hy', pool)
    await worker(pool, 'w')
    // Added by hand: no job field (so no id, no producer). The load is raised as dispatch would have.
    // (In one transaction: the worker may read it before a second command would run.)
    await c.multi().xadd(queueKey(keys, 'w-1'), '*', 'hello', 'world').zincrby(keys.load, 1, 'w-1').exec()
    await eventually(async () => (await c.xlen(keys.dead)) === 1)
    const [[, fields]] = (await c.xrange(keys.dead, '-', '+')) as [[string, string[]]]
    expect(fields.slice(0, 2)).toEqual(['reason', 'invalid entry: job is missing'])
    expect(fields).toContain('hello')
    const d = dispatcher(pool)
    expect((await d.submit({ n: 1 })).echo.n).toBe(1)
    await settledPool(pool)
  })

  it('frees the slot of a handler that hangs past the deadline, ignoring its signal', async () => {
    const pool = uniquePool('hang')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      concurrency: 1,
      drainTimeoutMs: 100,
      handler: (req: unknown) => (req === 'hang' ? new Promise(() => {}) : req),
    })
    closers.push(() => group.close())
    const d = dispatcher(pool)
    const hung = await d.submit('hang', { timeoutMs: 300 }).catch((e: unknown) => e)
    expect(isHedgeyardError(hung, 'TIMEOUT')).toBe(true)
    // The only slot is free again after the deadline and the grace period.
    expect(await d.submit('next', { timeoutMs: 5_000 })).toBe('next')
    const [m] = await d.workerMetrics()
    expect(m).toMatchObject({ processed: 2, errors: 1, inflight: 0 })
  })
})

describe('memory', () => {
  it('leaves only TTL-bound keys once workers are gone', async () => {
    const pool = uniquePool('keys')
    const w = await worker(pool, 'k')
    const d = dispatcher(pool)
    await Promise.all(Array.from({ length: 50 }, (_, n) => d.submit({ n }, { session: `s${n % 5}` })))
    await w.stop('SIGTERM')
    await d.close()
    const keys = poolKeys('hy', pool)
    const left = await poolKeysInRedis(c, pool)
    const lasting = (k: string) =>
      isKeyOf(k, keys, workerKey) || isKeyOf(k, keys, queueKey) || k === keys.load || k === keys.alive
    expect(left.filter(lasting)).toEqual([])
    for (const key of left) expect(await c.pttl(key), key).toBeGreaterThan(0)
  })
})
