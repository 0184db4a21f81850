import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import {
  CLI,
  client,
  eventually,
  loadAndLengths,
  poolKeysInRedis,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, inspectPool, poolKeys } from 'hedgeyard'
import { queueKey, workerKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const c = client()
const running: WorkerProcess[] = []
const dispatchers: Dispatcher[] = []
afterEach(async () => {
  await Promise.all(dispatchers.splice(0).map((d) => d.close()))
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
})
afterAll(() => c.disconnect())

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args, '--redis', redisUrl()])
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

type Outcome =
  | { status: 'fulfilled'; value: unknown }
  | { status: 'rejected'; reason: Record<string, unknown> }

/** Submits without waiting; each submit's outcome lands at its index when it ends. */
function submitAll(d: Dispatcher, payloads: unknown[], timeoutMs = 60_000): (Outcome | undefined)[] {
  const outcomes: (Outcome | undefined)[] = payloads.map(() => undefined)
  payloads.forEach((p, i) => {
    d.submit(p, { timeoutMs }).then(
      (value) => {
        outcomes[i] = { status: 'fulfilled', value }
      },
      (reason) => {
        outcomes[i] = { status: 'rejected', reason }
      },
    )
  })
  return outcomes
}

/** Waits until the outcomes at `indexes` are in. */
function settled(outcomes: (Outcome | undefined)[], indexes = outcomes.map((_, i) => i)) {
  return eventually(() => indexes.every((i) => outcomes[i] !== undefined))
}

/** Waits until no worker of the pool has a lease that runs. */
async function untilNoneAlive(pool: string): Promise<void> {
  await eventually(async () => (await inspectPool({ redis: redisUrl(), pool })).every((w) => !w.alive))
}

/** The pool's keys that belong to one worker: its hash and its stream. */
async function workerKeysLeft(pool: string): Promise<string[]> {
  const keys = poolKeys('hy', pool)
  return (await poolKeysInRedis(c, pool)).filter(
    (k) => k.startsWith(workerKey(keys, '')) || k.startsWith(queueKey(keys, '')),
  )
}

describe('hedgeyard pool forget-dead', () => {
  it('empties an abandoned pool: jobs to the dead letters, keys removed; retried letters run later', async () => {
    const pool = uniquePool('forget-abandoned')
    const keys = poolKeys('hy', pool)
    const w = await spawnWorker({
      pool,
      handler: 'echo.js',
      idPrefix: 'lost',
      concurrency: 1,
      extraArgs: ['--lease-ms', '300'],
    })
    running.push(w)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    dispatchers.push(d)
    // One job running, three queued behind it.
    const outcomes = submitAll(d, [{ delayMs: 60_000 }, { n: 2 }, { n: 3 }, { n: 4 }])
    await eventually(async () => Number(await c.zscore(keys.load, 'lost-1')) === 4)
    await w.stop('SIGKILL')
    await untilNoneAlive(pool)

    const forgot = await cli(['pool', 'forget-dead', '--pool', pool])
    expect(forgot.stderr).toBe('')
    expect(forgot.code).toBe(0)
    expect(forgot.stdout).toBe(
      `pool '${pool}': 1 dead workers removed; their jobs: 0 moved to live workers, 4 dead-lettered, 0 dropped (their callers had TIMEOUT or WORKER_LOST)\n`,
    )
    // Every caller hears at once, instead of waiting for its timeout.
    await settled(outcomes)
    for (const s of outcomes) {
      expect(s).toMatchObject({ status: 'rejected', reason: { code: 'DEAD_LETTERED' } })
    }
    expect(outcomes[1]?.status === 'rejected' && outcomes[1].reason.message).toBe(
      'worker lost-1 was lost and no worker of the pool is alive',
    )
    // Nothing of the worker is left: no hash, no stream, no entry in load, ready or alive.
    expect(await workerKeysLeft(pool)).toEqual([])
    for (const key of [keys.load, keys.ready, keys.alive]) expect(await c.exists(key)).toBe(0)
    const inspect = await cli(['inspect', '--pool', pool])
    expect(inspect.code).toBe(3)
    expect(inspect.stdout).toBe(`pool '${pool}' has no registered workers\n`)
    // A second run finds nothing.
    expect((await cli(['pool', 'forget-dead', '--pool', pool, '--json'])).stdout).toBe(
      '{"removed":0,"moved":0,"lettered":0,"dropped":0,"waiting":[]}\n',
    )

    // Later a worker comes: the queued letters are retried, and their results read from any host.
    const letters = JSON.parse((await cli(['dead', 'list', '--pool', pool, '--json'])).stdout) as {
      deadId: string
      payload: string
      reason: string
    }[]
    expect(letters).toHaveLength(4)
    const queued = letters.filter((l) => !l.payload.includes('delayMs'))
    expect(queued.map((l) => l.reason)).toEqual(
      Array(3).fill('worker lost-1 was lost and no worker of the pool is alive'),
    )
    running.push(await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'new' }))
    const retried = await cli(['dead', 'retry', '--pool', pool, ...queued.map((l) => l.deadId)])
    expect(retried.code).toBe(0)
    const jobIds = [...retried.stdout.matchAll(/ as job (\S+) on new-1\n/g)].map((m) => m[1] as string)
    expect(jobIds).toHaveLength(3)
    for (const [i, jobId] of jobIds.entries()) {
      const stdout = await eventually(async () => {
        const r = await cli(['result', '--pool', pool, jobId])
        return r.code === 0 ? r.stdout : ''
      })
      expect(JSON.parse(stdout)).toMatchObject({ echo: JSON.parse(queued[i]?.payload as string) })
    }
  })

  it("moves a dead worker's jobs to a live worker, and leaves the live one alone", async () => {
    const pool = uniquePool('forget-live')
    const keys = poolKeys('hy', pool)
    const w = await spawnWorker({
      pool,
      handler: 'echo.js',
      idPrefix: 'lost',
      concurrency: 1,
      extraArgs: ['--lease-ms', '300'],
    })
    running.push(w)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    dispatchers.push(d)
    const outcomes = submitAll(d, [{ delayMs: 5_000 }, { n: 2 }, { n: 3 }])
    await eventually(async () => Number(await c.zscore(keys.load, 'lost-1')) === 3)
    await w.stop('SIGKILL')
    await untilNoneAlive(pool)
    // A lease of a minute: its own rescue runs on its first heartbeat, 20 s from now, so what moves
    // the jobs here is forget-dead.
    running.push(
      await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'live', extraArgs: ['--lease-ms', '60000'] }),
    )

    const forgot = await cli(['pool', 'forget-dead', '--pool', pool, '--json'])
    expect(JSON.parse(forgot.stdout)).toEqual({ removed: 1, moved: 3, lettered: 0, dropped: 0, waiting: [] })
    await settled(outcomes, [1, 2])
    expect(outcomes[1]).toMatchObject({ status: 'fulfilled', value: { echo: { n: 2 }, workerId: 'live-1' } })
    expect(outcomes[2]).toMatchObject({ status: 'fulfilled', value: { echo: { n: 3 }, workerId: 'live-1' } })
    // The job that was running when its worker died runs again on the live worker.
    const workers = await inspectPool({ redis: redisUrl(), pool })
    expect(workers).toMatchObject([{ workerId: 'live-1', alive: true, inflight: 1 }])
    expect(outcomes[0]).toBeUndefined()
  })

  it('a worker that comes back after forget-dead registers again and takes jobs', async () => {
    const pool = uniquePool('forget-back')
    const keys = poolKeys('hy', pool)
    const w = await spawnWorker({
      pool,
      handler: 'echo.js',
      idPrefix: 'paused',
      concurrency: 1,
      extraArgs: ['--lease-ms', '300'],
    })
    running.push(w)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    dispatchers.push(d)
    const outcomes = submitAll(d, [{ delayMs: 1_000 }, { n: 2 }])
    await eventually(async () => Number(await c.zscore(keys.load, 'paused-1')) === 2)
    // Stopped, not dead: a long pause (a debugger, a VM migration) outlives its lease.
    w.child.kill('SIGSTOP')
    await untilNoneAlive(pool)
    const forgot = await cli(['pool', 'forget-dead', '--pool', pool, '--json'])
    expect(JSON.parse(forgot.stdout)).toMatchObject({ removed: 1, lettered: 2 })
    await settled(outcomes)
    expect(outcomes.map((s) => s?.status)).toEqual(['rejected', 'rejected'])
    w.child.kill('SIGCONT')
    await eventually(async () =>
      (await inspectPool({ redis: redisUrl(), pool })).some((x) => x.workerId === 'paused-1' && x.alive),
    )
    expect(w.output()).toContain('workers were removed from the pool; registering them again')
    expect(await d.submit({ n: 3 })).toMatchObject({ echo: { n: 3 }, workerId: 'paused-1' })
    // The job it ran through the pause finished after its caller had DEAD_LETTERED: that answer
    // stays the job's one answer, and the worker's bookkeeping is whole.
    const jobId = outcomes[0]?.status === 'rejected' ? String(outcomes[0].reason.jobId) : ''
    await eventually(async () => (await loadAndLengths(c, pool)).every((x) => x.load === 0 && x.xlen === 0))
    const stored = await cli(['result', '--pool', pool, jobId])
    expect(stored.stderr).toContain(
      'error DEAD_LETTERED: worker paused-1 was lost and no worker of the pool is alive',
    )
  })

  it('a worker key of another type, an invalid entry or a worker without a lease does not stop the others', async () => {
    const pool = uniquePool('forget-hostile')
    const keys = poolKeys('hy', pool)
    const w = await spawnWorker({
      pool,
      handler: 'echo.js',
      idPrefix: 'bad',
      count: 3,
      concurrency: 1,
      extraArgs: ['--lease-ms', '300'],
    })
    running.push(w)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    dispatchers.push(d)
    const outcomes = submitAll(
      d,
      Array.from({ length: 6 }, (_, i) => ({ n: i, delayMs: 60_000 })),
      // bad-1's jobs are lost with its stream: their callers have only their timeout.
      15_000,
    )
    await eventually(async () => (await loadAndLengths(c, pool)).reduce((n, x) => n + x.load, 0) === 6)
    await w.stop('SIGKILL')
    await untilNoneAlive(pool)
    // bad-1's stream and bad-2's hash are overwritten by another client; ghost-1 is in `load`
    // without a lease, with an entry that is not a job.
    await c.del(queueKey(keys, 'bad-1'))
    await c.set(queueKey(keys, 'bad-1'), 'not a stream')
    await c.del(workerKey(keys, 'bad-2'))
    await c.rpush(workerKey(keys, 'bad-2'), 'not a hash')
    await c.zadd(keys.load, 1, 'ghost-1')
    await c.hset(workerKey(keys, 'ghost-1'), 'capacity', '5')
    await c.xadd(queueKey(keys, 'ghost-1'), '*', 'junk', '1')

    const forgot = await cli(['pool', 'forget-dead', '--pool', pool, '--json'])
    expect(forgot.stderr).toBe('')
    // bad-1's two jobs went with its stream; bad-2's and bad-3's four are dead letters, with ghost's entry.
    expect(JSON.parse(forgot.stdout)).toEqual({ removed: 4, moved: 0, lettered: 5, dropped: 0, waiting: [] })
    expect(await workerKeysLeft(pool)).toEqual([])
    for (const key of [keys.load, keys.ready, keys.alive]) expect(await c.exists(key)).toBe(0)
    const letters = JSON.parse((await cli(['dead', 'list', '--pool', pool, '--json'])).stdout) as {
      workerId: string
      reason: string
    }[]
    expect(letters.filter((l) => l.workerId === 'ghost-1').map((l) => l.reason)).toEqual([
      expect.stringMatching(/^invalid entry: /),
    ])
    // The callers of bad-2's and bad-3's jobs hear now; bad-1's jobs went with its stream.
    await eventually(() => outcomes.filter((s) => s?.status === 'rejected').length === 4)
    expect(
      outcomes.filter((s) => s?.status === 'rejected' && s.reason.code === 'DEAD_LETTERED'),
    ).toHaveLength(4)
  })
})
