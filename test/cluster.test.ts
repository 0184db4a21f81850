import { eventually, spawnWorker, type WorkerProcess } from '@hedgeyard/testing/helpers'
import { startRedisCluster, type TestCluster } from '@hedgeyard/testing/redis-cluster'
import {
  Dispatcher,
  type HedgeyardError,
  inspectPool,
  isHedgeyardError,
  poolKeys,
  type StreamChunk,
  startWorkers,
  type WorkerGroup,
} from 'hedgeyard'
import { affinityKey, queueKey } from 'hedgeyard/internal'
import { Cluster, Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

// One local cluster of 3 primaries and 3 replicas for the file; each test has a pool of its own,
// and every pool's keys share its {pool} hash tag, so a pool lives on one slot of one primary.
let cluster: TestCluster
let admin: Cluster
beforeAll(async () => {
  cluster = await startRedisCluster()
  admin = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.server.port })))
  admin.on('error', () => {})
})
afterAll(async () => {
  admin?.disconnect()
  await cluster?.stop()
})

const closers: (() => Promise<unknown>)[] = []
const processes: WorkerProcess[] = []
afterEach(async () => {
  await Promise.all(processes.splice(0).map((w) => w.stop('SIGKILL')))
  for (const close of closers.splice(0).reverse()) await close()
})

let counter = 0
function pool(label: string): string {
  counter++
  return `${label}-${process.pid}-${counter}`
}

function dispatcher<Req = unknown, Res = unknown>(p: string, options: { redis?: unknown } = {}) {
  const d = new Dispatcher<Req, Res>({ redis: (options.redis ?? cluster.url) as string, pool: p })
  closers.push(() => d.close())
  return d
}

async function workers(
  p: string,
  handler: (req: never, ctx: { workerId: string; signal: AbortSignal }) => unknown,
  options: { idPrefix?: string; count?: number; concurrency?: number } = {},
): Promise<WorkerGroup> {
  const group = await startWorkers({
    redis: cluster.url,
    pool: p,
    count: options.count ?? 1,
    concurrency: options.concurrency ?? 4,
    blockMs: 1_000,
    leaseMs: 5_000,
    handler: handler as never,
    ...(options.idPrefix === undefined ? {} : { idPrefix: options.idPrefix }),
  })
  closers.push(() => group.close())
  return group
}

/** Every worker of the pool holds nothing: no job queued or running, load 0. */
async function settled(p: string): Promise<void> {
  const keys = poolKeys('hy', p)
  await eventually(async () => {
    const loads = await admin.zrange(keys.load, '0', '-1', 'WITHSCORES')
    for (let i = 0; i < loads.length; i += 2) {
      if (Number(loads[i + 1]) !== 0) return false
      if ((await admin.xlen(queueKey(keys, loads[i] as string))) !== 0) return false
    }
    return true
  }, 15_000)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until `signal` aborts; resolves at once if it has. */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve()
    else signal.addEventListener('abort', () => resolve(), { once: true })
  })
}

type ClusterNode = TestCluster['nodes'][number]

/** A client of one node, closed after the test. */
function nodeClient(n: ClusterNode): Redis {
  const c = new Redis(n.server.port)
  closers.push(async () => c.disconnect())
  return c
}

/** Whether `n` is a primary now. */
async function isPrimary(n: ClusterNode): Promise<boolean> {
  return ((await nodeClient(n).call('ROLE')) as string[])[0] === 'master'
}

/**
 * Moves the slot of `key` from `source` to another primary as an operator does: `SETSLOT
 * IMPORTING` and `MIGRATING`, `MIGRATE` of its keys `batch` at a time (`pauseMs` apart), then
 * `SETSLOT NODE` on every primary. Returns how many keys it moved.
 */
async function moveSlot(
  key: string,
  source: ClusterNode,
  o: { batch: number; pauseMs: number },
): Promise<number> {
  let target: ClusterNode | undefined
  for (const n of cluster.nodes) if (n !== source && (await isPrimary(n))) target = n
  if (target === undefined) throw new Error('no other primary')
  const src = nodeClient(source)
  const dst = nodeClient(target)
  const slot = Number(await src.call('CLUSTER', 'KEYSLOT', key))
  const srcId = String(await src.call('CLUSTER', 'MYID'))
  const dstId = String(await dst.call('CLUSTER', 'MYID'))
  await dst.call('CLUSTER', 'SETSLOT', slot, 'IMPORTING', srcId)
  await src.call('CLUSTER', 'SETSLOT', slot, 'MIGRATING', dstId)
  let moved = 0
  for (;;) {
    const batch = (await src.call('CLUSTER', 'GETKEYSINSLOT', slot, o.batch)) as string[]
    if (batch.length === 0) break
    await src.call('MIGRATE', '127.0.0.1', target.server.port, '', 0, 5_000, 'KEYS', ...batch)
    moved += batch.length
    if (o.pauseMs > 0) await sleep(o.pauseMs)
  }
  // The target first, then the source, then the other primaries; replicas learn it from theirs.
  await dst.call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId)
  await src.call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId)
  for (const n of cluster.nodes) {
    if (n !== source && n !== target && (await isPrimary(n)))
      await nodeClient(n).call('CLUSTER', 'SETSLOT', slot, 'NODE', dstId)
  }
  await cluster.waitHealthy()
  return moved
}

/** Reads a stream to its end: the chunks, and the result or the error code. */
async function drain(stream: AsyncIterable<StreamChunk> & { result: Promise<unknown> }) {
  const chunks: unknown[] = []
  let error: HedgeyardError | undefined
  try {
    for await (const chunk of stream) chunks.push(chunk.data)
  } catch (err) {
    if (!isHedgeyardError(err)) throw err
    error = err
  }
  return { chunks, error, result: error ? undefined : await stream.result }
}

describe('a pool on a Redis Cluster', () => {
  it('submits and gets results through a redis+cluster:// URL and through { cluster: [...] }', async () => {
    const p = pool('basic')
    await workers(p, (req: { n: number }, ctx) => ({ n: req.n * 2, workerId: ctx.workerId }))
    const d = dispatcher<{ n: number }, { n: number }>(p)
    const results = await Promise.all(Array.from({ length: 50 }, (_, n) => d.submit({ n })))
    expect(results.map((r) => r.n)).toEqual(Array.from({ length: 50 }, (_, n) => n * 2))
    const listed = dispatcher<{ n: number }, { n: number }>(p, {
      redis: { cluster: cluster.urls.slice(0, 2) },
    })
    expect((await listed.submit({ n: 21 })).n).toBe(42)
    await settled(p)
    // The operator tools too.
    const view = await inspectPool({ redis: cluster.url, pool: p })
    expect(view.map((w) => ({ alive: w.alive, state: w.state }))).toEqual([{ alive: true, state: 'active' }])
  })

  it('keeps a session on its worker (affinity), bound in the pool slot', async () => {
    const p = pool('affinity')
    await workers(p, (_req: unknown, ctx) => ctx.workerId, { count: 3 })
    const d = dispatcher<unknown, string>(p)
    const first = await d.submit({}, { session: 'chat-1' })
    for (let i = 0; i < 10; i++) expect(await d.submit({ i }, { session: 'chat-1' })).toBe(first)
    expect(await admin.get(affinityKey(poolKeys('hy', p), 'chat-1'))).toBe(first)
    await settled(p)
  })

  it('a hedged request on a slow worker is answered by the fast one, and the slow copy is cancelled', async () => {
    const p = pool('hedge')
    let slowAborted = false
    await workers(
      p,
      async (req: { warm?: boolean }, ctx) => {
        if (req.warm) return 'slow'
        await Promise.race([aborted(ctx.signal), sleep(20_000)])
        slowAborted = ctx.signal.aborted
        return 'slow'
      },
      { idPrefix: 'slow' },
    )
    const d = dispatcher<{ warm?: boolean }, string>(p)
    // Bind the session to the slow worker while it is the only one.
    expect(await d.submit({ warm: true }, { session: 'chat' })).toBe('slow')
    await workers(p, () => 'fast', { idPrefix: 'fast' })
    const answer = await d.submit({}, { session: 'chat', hedge: { delayMs: 100 }, timeoutMs: 15_000 })
    expect(answer).toBe('fast')
    expect(d.stats()).toMatchObject({ hedgesSent: 1, hedgesWon: 1 })
    // The cancel reached the slow worker over the cluster's pub/sub.
    await eventually(() => slowAborted, 10_000)
    await settled(p)
  })

  it('streams to the end from a worker process started with --redis redis+cluster://, and cancels a running stream', async () => {
    const p = pool('stream')
    processes.push(await spawnWorker({ pool: p, handler: 'stream.js', redis: cluster.url }))
    const d = dispatcher(p)
    const run = await drain(d.stream({ chunks: 20, everyMs: 2 }) as never)
    expect(run.error).toBeUndefined()
    expect((run.chunks as { i: number }[]).map((c) => c.i)).toEqual(
      Array.from({ length: 20 }, (_, i) => i + 1),
    )
    expect(run.result).toMatchObject({ chunks: 20 })

    const long = d.stream({ chunks: 1_000, everyMs: 20 })
    const iterator = long[Symbol.asyncIterator]()
    await iterator.next()
    expect(await d.cancel(long.jobId)).toBe('cancelled')
    const rest = await drain({ [Symbol.asyncIterator]: () => iterator, result: long.result } as never)
    expect(rest.error?.code).toBe('CANCELLED')
    // The worker's handler saw its signal abort (the cancel channel, on the pool's slot).
    const w = processes[0] as WorkerProcess
    await eventually(() => w.output().includes(`aborted ${long.jobId}`), 10_000)
    await settled(p)
  })

  it('sends results and cancels with sharded pub/sub, to the nodes of the pool slot only', async () => {
    const p = pool('sharded')
    const keys = poolKeys('hy', p)
    await workers(p, () => 'ok')
    const d = dispatcher(p)
    expect(await d.submit({})).toBe('ok')
    const primary = await cluster.primaryOf(keys.load)
    const node = new Redis(primary.server.port)
    closers.push(async () => node.disconnect())
    // The producer's results channel and the worker's cancel channel: shard channels on the
    // primary of the slot, and no node holds a plain subscription (which every PUBLISH would reach).
    const shardChannels = (await node.call('PUBSUB', 'SHARDCHANNELS', `${keys.base}*`)) as string[]
    expect(shardChannels.some((c) => c.startsWith(`${keys.base}results:`))).toBe(true)
    expect(shardChannels.some((c) => c.startsWith(`${keys.base}cancel:`))).toBe(true)
    for (const n of cluster.nodes) {
      const c = new Redis(n.server.port)
      expect(await c.call('PUBSUB', 'CHANNELS', `${keys.base}*`), n.address).toEqual([])
      c.disconnect()
    }
    expect(String(await node.info('commandstats'))).toMatch(/cmdstat_spublish:calls=[1-9]/)
  })

  it('connects as an ACL user named in the URL, and fails at once with REDIS_AUTH on a wrong password', async () => {
    // ACL users are per node: the same user on every one.
    for (const n of cluster.nodes) {
      const c = new Redis(n.server.port)
      await c.call('ACL', 'SETUSER', 'hy-cluster', 'on', '>s3cret', '~*', '&*', '+@all')
      c.disconnect()
    }
    const p = pool('acl')
    const addresses = cluster.nodes.map((n) => n.address).join(',')
    const group = await startWorkers({
      redis: `redis+cluster://hy-cluster:s3cret@${addresses}`,
      pool: p,
      blockMs: 1_000,
      handler: () => 'as hy-cluster',
    })
    closers.push(() => group.close())
    const d = dispatcher(p, { redis: { cluster: cluster.urls, username: 'hy-cluster', password: 's3cret' } })
    expect(await d.submit({})).toBe('as hy-cluster')

    const wrong = new Dispatcher({
      redis: `redis+cluster://hy-cluster:nope@${addresses}`,
      pool: p,
      connectTimeoutMs: 40_000,
    })
    closers.push(() => wrong.close())
    const startedAt = Date.now()
    const err = (await wrong.submit({}, { timeoutMs: 50_000 }).catch((e: unknown) => e)) as HedgeyardError
    expect(err.code).toBe('REDIS_AUTH')
    expect(err.message).not.toContain('nope')
    // At once, not at the connection's readiness timeout.
    expect(Date.now() - startedAt).toBeLessThan(20_000)
    const refused = (await startWorkers({
      redis: `redis+cluster://hy-cluster:nope@${addresses}`,
      pool: p,
      handler: () => 1,
    }).catch((e: unknown) => e)) as HedgeyardError
    expect(refused.code).toBe('REDIS_AUTH')
  })

  it("closes a worker group at once: CLIENT UNBLOCK reaches the node of the worker's blocking read", async () => {
    const p = pool('unblock')
    const group = await startWorkers({ redis: cluster.url, pool: p, blockMs: 60_000, handler: () => 1 })
    const d = dispatcher(p)
    expect(await d.submit({})).toBe(1)
    // The read is blocked for up to 60 s; without the unblock, close would wait for it.
    const startedAt = Date.now()
    await group.close()
    expect(Date.now() - startedAt).toBeLessThan(30_000)
  })
})

describe('a migration of the slot that holds the pool', () => {
  it('follows the pool to its new primary: blocking reads, sharded subscriptions and scripts move with it', async () => {
    const p = pool('migrate')
    const keys = poolKeys('hy', p)
    let cancelled = 0
    await workers(
      p,
      async (req: { hold?: boolean }, ctx) => {
        if (!req.hold) return 'ok'
        await aborted(ctx.signal)
        cancelled++
        return 'stopped'
      },
      { count: 2 },
    )
    const d = dispatcher(p)
    expect(await d.submit({})).toBe('ok')

    // Move the slot with the pool idle: the workers' reads are blocked on the old primary, the
    // producer and the workers subscribed there.
    const source = await cluster.primaryOf(keys.load)
    await moveSlot(keys.load, source, { batch: 100, pauseMs: 0 })
    expect((await cluster.primaryOf(keys.load)).address).not.toBe(source.address)

    // Submits, results and cancels all work on the new primary.
    const answers = await Promise.all(Array.from({ length: 20 }, () => d.submit({}, { timeoutMs: 15_000 })))
    expect(answers).toEqual(Array.from({ length: 20 }, () => 'ok'))
    const held = d.stream({ hold: true }, { timeoutMs: 15_000 })
    await eventually(async () => (await d.cancel(held.jobId)) === 'cancelled', 10_000)
    await eventually(() => cancelled === 1, 10_000)
    await settled(p)
  })
})

/** What a run of {@link steadySubmits} saw. */
interface SteadyRun {
  /** Submits answered more than once, or not at all (should be none). */
  notAnsweredOnce: number
  wrong: number
  /** Submits that failed, by code (REDIS_UNAVAILABLE too: submits wait for Redis by default). */
  errors: Record<string, number>
  /** Requests whose handler never ran, or ran more than once. */
  notRunOnce: number[]
  /** When the last submit started. */
  lastStartAt: number
}

/**
 * A pool of 3 workers whose handler counts its runs, and `total` submits started 5 ms apart
 * whether or not earlier ones were answered; `during(n)` runs after the n-th starts, without
 * holding up the next ones. Each submit is made once, with the default onRedisUnavailable
 * ('wait'): it waits for Redis on its own.
 */
async function steadySubmits(
  p: string,
  total: number,
  during: (n: number) => Promise<unknown> | undefined,
): Promise<SteadyRun> {
  const runs = new Map<number, number>()
  await workers(
    p,
    async (req: { n: number }) => {
      runs.set(req.n, (runs.get(req.n) ?? 0) + 1)
      await sleep(5 + (req.n % 20))
      return { n: req.n }
    },
    { count: 3, concurrency: 4 },
  )
  const d = dispatcher<{ n: number }, { n: number }>(p)
  const answers = new Array<number>(total).fill(0)
  const run: SteadyRun = { notAnsweredOnce: 0, wrong: 0, errors: {}, notRunOnce: [], lastStartAt: 0 }
  const one = async (n: number) => {
    try {
      const res = await d.submit({ n }, { timeoutMs: 30_000, session: `s${n % 10}`, onSaturated: 'wait' })
      if (res.n !== n) run.wrong++
    } catch (err) {
      const code = isHedgeyardError(err) ? err.code : String(err)
      run.errors[code] = (run.errors[code] ?? 0) + 1
    }
    answers[n] = (answers[n] ?? 0) + 1
  }
  const all: Promise<unknown>[] = []
  for (let n = 0; n < total; n++) {
    all.push(one(n))
    run.lastStartAt = Date.now()
    const side = during(n)
    if (side !== undefined) all.push(side)
    await sleep(5)
  }
  await Promise.all(all)
  run.notAnsweredOnce = answers.filter((a) => a !== 1).length
  for (let n = 0; n < total; n++) if (runs.get(n) !== 1) run.notRunOnce.push(n)
  await settled(p)
  return run
}

/** What every steady run must keep: each submit answered once and right, each request run once. */
function expectKept(run: SteadyRun): void {
  expect(run.notAnsweredOnce).toBe(0)
  expect(run.wrong).toBe(0)
  expect(run.errors).toEqual({})
  expect(run.notRunOnce).toEqual([])
}

describe('a slot migration under traffic', () => {
  it('answers every submit once, right, with nothing left queued, while the pool slot moves key by key to another primary', async () => {
    const p = pool('live-migration')
    const keys = poolKeys('hy', p)
    const source = await cluster.primaryOf(keys.load)
    let moved = 0
    let movedAt = 0
    const run = await steadySubmits(p, 600, (n) => {
      if (n !== 150) return undefined
      return moveSlot(keys.load, source, { batch: 1, pauseMs: 10 }).then((count) => {
        moved = count
        movedAt = Date.now()
      })
    })
    console.log(`live migration: 600 submits, ${moved} keys moved one by one`)
    expectKept(run)
    expect(moved).toBeGreaterThan(10)
    // Submits kept starting until the slot had moved.
    expect(movedAt).toBeLessThan(run.lastStartAt)
    expect((await cluster.primaryOf(keys.load)).address).not.toBe(source.address)
  }, 90_000)
})

describe('a failover of the primary that holds the pool', () => {
  it('answers every submit once, right, with nothing left queued, when that primary is killed and its replica takes over', async () => {
    const p = pool('failover')
    const keys = poolKeys('hy', p)
    const primary = await cluster.primaryOf(keys.load)
    let failoverMs = 0
    let promotedAt = 0
    const run = await steadySubmits(p, 1_200, (n) => {
      if (n !== 150) return undefined
      primary.server.kill()
      const killedAt = Date.now()
      return eventually(
        async () => (await cluster.primaryOf(keys.load)).address !== primary.address,
        30_000,
        50,
      ).then(() => {
        promotedAt = Date.now()
        failoverMs = promotedAt - killedAt
      })
    })
    console.log(
      `failover: 1200 submits, primary ${primary.address} killed after 150, replica promoted within ${failoverMs} ms`,
    )
    // Submits started all through the time the slot had no primary, and none failed for it.
    expect(promotedAt).toBeLessThan(run.lastStartAt)
    expectKept(run)
  }, 90_000)
})
