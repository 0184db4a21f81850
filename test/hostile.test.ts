import { fakeWorkers } from '@hedgeyard/testing/fake-pool'
import {
  cleanupPool,
  client,
  eventually,
  loadAndLengths,
  redisUrl,
  uniquePool,
} from '@hedgeyard/testing/helpers'
import { type LocalRedis, startLocalRedis } from '@hedgeyard/testing/redis-server'
import {
  Dispatcher,
  isHedgeyardError,
  poolKeys,
  retryDeadLetters,
  startWorkers,
  type WorkerGroup,
} from 'hedgeyard'
import {
  CONSUMER_GROUP,
  completeJobs,
  createConnection,
  type EntryFields,
  entryFieldList,
  entryFields,
  queueKey,
  registerWorkers,
  resultKey,
  workerKey,
} from 'hedgeyard/internal'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

// Anything that can reach Redis can write to a pool's keys. These tests write what a buggy or
// hostile client could, with plain Redis commands, and check that the pool goes on serving.

const c = client()
const closers: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

/** Workers in this process whose handler records the payloads it ran. */
async function workers(
  pool: string,
  idPrefix: string,
  options: { redis?: string; leaseMs?: number; ran?: unknown[] } = {},
): Promise<WorkerGroup> {
  const ran = options.ran ?? []
  const group = await startWorkers({
    redis: options.redis ?? redisUrl(),
    pool,
    idPrefix,
    leaseMs: options.leaseMs ?? 600,
    blockMs: 200,
    handler: async (req: unknown) => {
      ran.push(req)
      return req
    },
  })
  closers.push(() => group.close())
  return group
}

function dispatcher(pool: string, redis = redisUrl()): Dispatcher {
  const d = new Dispatcher({ redis, pool })
  closers.push(() => d.close())
  return d
}

/** Adds an entry to a worker's stream by hand and raises its load, as dispatch would. */
async function addEntry(pool: string, workerId: string, fields: EntryFields): Promise<string> {
  const k = poolKeys('hy', pool)
  const [[, id]] = (await c
    .multi()
    .xadd(queueKey(k, workerId), '*', ...entryFieldList(fields))
    .zincrby(k.load, 1, workerId)
    .exec()) as [[null, string], [null, string]]
  return id
}

/** Registers workers that never run anything, with a lease that runs out at once. */
async function deadWorkers(pool: string, ids: string[]): Promise<void> {
  const conn = createConnection(redisUrl(), 'command', 'hy:test-dead')
  await conn.connect()
  const k = poolKeys('hy', pool)
  await registerWorkers(
    conn,
    k,
    { leaseMs: 60_000, host: 'gone', pid: 1, concurrency: 1, capacity: 100 },
    ids,
  )
  conn.disconnect()
  for (const id of ids) await c.zadd(k.alive, 1, id)
}

/** The dead letters of a pool, as reason and job id. */
async function deadLetters(pool: string): Promise<{ reason: string; id: string | undefined }[]> {
  const entries = await c.xrange(poolKeys('hy', pool).dead, '-', '+')
  return entries.map(([, f]) => ({ reason: f[1] as string, id: entryFields(f.slice(6)).id }))
}

/** Adds a dead letter by hand, as complete writes one: reason 'test', worker 'gone', then the entry's fields. */
async function addDeadLetter(
  pool: string,
  entryId: string,
  fields: Parameters<typeof entryFieldList>[0],
): Promise<void> {
  await c.xadd(
    poolKeys('hy', pool).dead,
    '*',
    'reason',
    'test',
    'worker',
    'gone',
    'entry',
    entryId,
    ...entryFieldList(fields),
  )
}

/** The stored result of a job, parsed (it must be valid JSON). */
async function storedResult(pool: string, jobId: string): Promise<Record<string, unknown>> {
  // A handler has run before its result is stored (the completion is sent the next turn): wait for it.
  const text = await eventually(() => c.get(resultKey(poolKeys('hy', pool), jobId)), 5_000)
  return JSON.parse(text as string) as Record<string, unknown>
}

const FUTURE = String(Date.now() + 600_000)

describe('hostile entries in worker streams', () => {
  it('rescue handles each entry and each dead worker on its own: one bad deadline does not stop the pool', async () => {
    const pool = uniquePool('hostile-rescue')
    const k = poolKeys('hy', pool)
    await deadWorkers(pool, ['dead-a', 'dead-b'])
    // dead-a: a good job, then one whose deadline is not a number (before: rescue failed on it on
    // every heartbeat, for every dead worker of the pool). dead-b: a job without a deadline
    // (before: rescue dropped it, while the worker's decoder reads a missing deadline as none).
    await addEntry(pool, 'dead-a', { id: 'good-1', payload: '{"n":1}', producer: 'p-1', deadline: FUTURE })
    await addEntry(pool, 'dead-a', { id: 'bad-1', payload: '{"n":2}', producer: 'p-1', deadline: 'abc' })
    await addEntry(pool, 'dead-b', { id: 'no-deadline-1', payload: '{"n":3}', producer: 'p-1' })
    const ran: unknown[] = []
    await workers(pool, 'live', { ran })
    await eventually(async () => ran.length === 2)
    expect(ran).toEqual(expect.arrayContaining([{ n: 1 }, { n: 3 }]))
    expect(await storedResult(pool, 'good-1')).toMatchObject({ ok: true, value: { n: 1 } })
    expect(await storedResult(pool, 'no-deadline-1')).toMatchObject({ ok: true, value: { n: 3 } })
    // The bad one is in the dead letters with its reason, and its producer was told.
    expect(await deadLetters(pool)).toEqual([
      { reason: 'invalid entry: deadline is not a whole number', id: 'bad-1' },
    ])
    expect(await storedResult(pool, 'bad-1')).toMatchObject({ ok: false, error: { code: 'DEAD_LETTERED' } })
    // Both dead workers are gone.
    await eventually(async () => (await c.exists(workerKey(k, 'dead-a'), workerKey(k, 'dead-b'))) === 0)
    for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    await cleanupPool(c, pool)
  })

  it('a worker dead-letters entries with numbers that are not numbers, and answers with valid JSON', async () => {
    const pool = uniquePool('hostile-numbers')
    const ran: unknown[] = []
    await workers(pool, 'w', { ran })
    // Before: copy=1e400 became "copy":Infinity in the stored result (not JSON), attempt=abc NaN.
    await addEntry(pool, 'w-1', {
      id: 'inf-1',
      payload: '1',
      producer: 'p-1',
      deadline: FUTURE,
      copy: '1e400',
    })
    await addEntry(pool, 'w-1', {
      id: 'nan-1',
      payload: '2',
      producer: 'p-1',
      deadline: FUTURE,
      attempt: 'abc',
    })
    await addEntry(pool, 'w-1', { id: 'ok-1', payload: '3', producer: 'p-1', deadline: FUTURE })
    await eventually(async () => (await deadLetters(pool)).length === 2)
    expect(await deadLetters(pool)).toEqual([
      { reason: 'invalid entry: copy is not a whole number', id: 'inf-1' },
      { reason: 'invalid entry: attempt is not a whole number', id: 'nan-1' },
    ])
    for (const id of ['inf-1', 'nan-1']) {
      expect(await storedResult(pool, id)).toMatchObject({ ok: false, error: { code: 'DEAD_LETTERED' } })
    }
    await eventually(async () => ran.length === 1)
    expect(ran).toEqual([3])
    await cleanupPool(c, pool)
  })

  it('a copy field cannot inject a success into the DEAD_LETTERED answer rescue sends', async () => {
    const pool = uniquePool('hostile-inject')
    await deadWorkers(pool, ['dead-a'])
    // Before: rescue built the envelope by concatenating `copy`, so this made it {"ok":true,"value":666}.
    const copy = '1,"ok":true,"value":666,"x":1'
    await addEntry(pool, 'dead-a', { id: 'inj-1', payload: '1', producer: 'p-1', deadline: FUTURE, copy })
    await workers(pool, 'live')
    await eventually(async () => (await deadLetters(pool)).length === 1)
    const result = await storedResult(pool, 'inj-1')
    expect(result).toMatchObject({ ok: false, error: { code: 'DEAD_LETTERED' } })
    expect(result.value).toBeUndefined()
    await cleanupPool(c, pool)
  })

  it('a worker refuses a payload over its maxPayloadBytes, as the producer does', async () => {
    const pool = uniquePool('hostile-large')
    const ran: unknown[] = []
    await workers(pool, 'w', { ran })
    const payload = JSON.stringify('x'.repeat(20 * 1024 * 1024))
    await addEntry(pool, 'w-1', { id: 'big-1', payload, producer: 'p-1', deadline: FUTURE })
    await eventually(async () => (await deadLetters(pool)).length === 1, 20_000)
    const [letter] = await deadLetters(pool)
    expect(letter?.reason).toMatch(
      /^payload of 20971522 bytes is over the worker's maxPayloadBytes \(1048576\)$/,
    )
    expect(await storedResult(pool, 'big-1')).toMatchObject({ ok: false, error: { code: 'DEAD_LETTERED' } })
    expect(ran).toEqual([])
    await cleanupPool(c, pool)
  })
})

describe('completions a worker cannot forge', () => {
  it('a worker completes only its own entries, as the jobs they are, and cannot add a results line', async () => {
    const pool = uniquePool('hostile-forge')
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-forge')
    await conn.connect()
    closers.push(() => conn.disconnect())
    // Two workers that never read: the test plays the forging worker w1.
    await registerWorkers(conn, k, { leaseMs: 60_000, host: 'h', pid: 1, concurrency: 1, capacity: 10 }, [
      'w1',
      'w2',
    ])
    const d = dispatcher(pool)
    await c.zadd(k.ready, 5, 'w1') // w2 gets the victim's job
    const victim = d.submit('victim', { timeoutMs: 4_000 })
    await eventually(async () => (await c.xlen(queueKey(k, 'w2'))) === 1)
    await c.zadd(k.ready, 0, 'w1')
    await c.zadd(k.ready, 5, 'w2')
    const own = d.submit('own', { timeoutMs: 4_000 })
    await eventually(async () => (await c.xlen(queueKey(k, 'w1'))) === 1)
    const read = (await c.xreadgroup('GROUP', CONSUMER_GROUP, 'w1', 'STREAMS', queueKey(k, 'w1'), '>')) as [
      string,
      [string, string[]][],
    ][]
    const ownEntry = read[0]?.[1][0]?.[0] as string
    const [[victimEntry]] = (await c.xrange(queueKey(k, 'w2'), '-', '+')) as [[string, string[]]]
    const victimJob = (await c.xrange(queueKey(k, 'w2'), '-', '+'))[0]?.[1][1] as string
    const settings = { resultTtlMs: 60_000, deadLetterCap: 100 }
    // w1 completes w2's entry: refused (fencing), nothing stored.
    const stolen = await completeJobs(conn, k, settings, [
      { workerId: 'w1', entryId: victimEntry, outcome: 'ok', envelope: '{"ok":true,"value":"forged"}' },
    ])
    expect(stolen.statuses).toEqual(['LOST'])
    // w1 completes its own entry with an envelope that carries a second line for the victim's job:
    // its own job gets a PROTOCOL_ERROR, the victim's job nothing.
    const forged = `{"ok":true,"workerId":"w1","value":"own"}\n${victimJob} {"ok":true,"workerId":"w1","value":"forged"}`
    const done = await completeJobs(conn, k, settings, [
      { workerId: 'w1', entryId: ownEntry, outcome: 'ok', envelope: forged },
    ])
    expect(done.statuses).toEqual(['OK'])
    const ownError = await own.then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isHedgeyardError(ownError, 'PROTOCOL_ERROR')).toBe(true)
    expect(await c.exists(resultKey(k, victimJob))).toBe(0)
    // The victim's job gets its real result from the worker that holds it.
    await c.xreadgroup('GROUP', CONSUMER_GROUP, 'w2', 'STREAMS', queueKey(k, 'w2'), '>')
    await completeJobs(conn, k, settings, [
      {
        workerId: 'w2',
        entryId: victimEntry,
        outcome: 'ok',
        envelope: '{"ok":true,"workerId":"w2","value":"real"}',
      },
    ])
    expect(await victim).toBe('real')
    await cleanupPool(c, pool)
  })
})

describe('keys tampered with from redis-cli', () => {
  let redis: LocalRedis
  beforeAll(async () => {
    redis = await startLocalRedis()
  })
  afterAll(() => redis.stop())

  it('a user without XADD gets REDIS_NOPERM from dispatch, and no load is left without its entry', async () => {
    const pool = uniquePool('hostile-acl')
    const k = poolKeys('hy', pool)
    const admin = client(redis.url)
    closers.push(() => admin.disconnect())
    await workers(pool, 'w', { redis: redis.url, leaseMs: 60_000 })
    await admin.acl('SETUSER', 'no-xadd', 'on', '>pw', '~*', '&*', '+@all', '-xadd')
    const d = dispatcher(pool, `redis://no-xadd:pw@127.0.0.1:${redis.port}`)
    for (let i = 0; i < 3; i++) {
      const err = await d.submit(i).then(
        () => undefined,
        (e: unknown) => e,
      )
      expect(isHedgeyardError(err, 'REDIS_NOPERM')).toBe(true)
    }
    // Before: each failed dispatch left load + 1 and no entry (the worker stuck at capacity).
    expect(await admin.zscore(k.load, 'w-1')).toBe('0')
    expect(await admin.xlen(queueKey(k, 'w-1'))).toBe(0)
  })

  it('a worker stream of another type takes its worker out of dispatch, and registering again replaces it', async () => {
    const pool = uniquePool('hostile-stream')
    const k = poolKeys('hy', pool)
    const ran: unknown[] = []
    await workers(pool, 'a', { ran, leaseMs: 600 })
    await workers(pool, 'b', { ran, leaseMs: 600 })
    const d = dispatcher(pool)
    expect(await d.submit('first')).toBe('first')
    // Someone replaces worker a's stream with a string (its group with it).
    await c.multi().del(queueKey(k, 'a-1')).set(queueKey(k, 'a-1'), 'x').zadd(k.ready, 0, 'a-1').exec()
    // Dispatch still serves every submit (b takes them while a is broken)...
    const values = await Promise.all(Array.from({ length: 20 }, (_, i) => d.submit(i)))
    expect(values).toEqual(Array.from({ length: 20 }, (_, i) => i))
    // ...and a's heartbeat or its reader registers it again, which replaces the string.
    await eventually(async () => (await c.type(queueKey(k, 'a-1'))) === 'stream')
    await eventually(async () => (await c.zscore(k.ready, 'a-1')) !== null)
    for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    await cleanupPool(c, pool)
  })

  it('heartbeat heals a load that is wrong, deleted or of another type', async () => {
    const pool = uniquePool('hostile-load')
    const k = poolKeys('hy', pool)
    await workers(pool, 'w', { leaseMs: 600 })
    const d = dispatcher(pool)
    // A load of 3 with an empty stream: before, the worker looked busier than it was for good.
    await c.zadd(k.load, 3, 'w-1')
    await eventually(async () => (await c.zscore(k.load, 'w-1')) === '0')
    await c.del(k.load)
    await eventually(async () => (await c.zscore(k.load, 'w-1')) === '0')
    await c.multi().del(k.load).set(k.load, 'garbage').exec()
    await eventually(async () => (await c.type(k.load)) === 'zset')
    expect(await d.submit('after')).toBe('after')
    await cleanupPool(c, pool)
  })

  it('a result stored but never published reaches its caller instead of TIMEOUT', async () => {
    const pool = uniquePool('hostile-publish')
    const admin = client(redis.url)
    closers.push(() => admin.disconnect())
    // The workers' user may not publish on the results channels: complete stores the result and
    // acknowledges the entry, then its PUBLISH is refused.
    await admin.acl('SETUSER', 'no-publish', 'on', '>pw', '~*', 'resetchannels', '&hy:*:cancel:*', '+@all')
    await workers(pool, 'w', { redis: `redis://no-publish:pw@127.0.0.1:${redis.port}`, leaseMs: 60_000 })
    const d = dispatcher(pool, redis.url)
    expect(await d.submit({ n: 1 }, { timeoutMs: 1_500 })).toEqual({ n: 1 })
  })
})

describe('dead letters retried', () => {
  it('a retry that fails leaves every letter in place, and a retry that works moves each once', async () => {
    const pool = uniquePool('hostile-retry')
    const k = poolKeys('hy', pool)
    await addDeadLetter(pool, '1-1', { id: 'j-1', payload: '{"n":1}', producer: 'p' })
    await addDeadLetter(pool, '1-2', { id: 'j-2', payload: '{"n":2}', producer: 'p' })
    const ran: unknown[] = []
    await workers(pool, 'w', { ran, leaseMs: 60_000 })
    // The dispatch fails: the candidates key holds another type. Before: each letter was deleted
    // first, and a failed dispatch lost it.
    await c.multi().del(k.ready).set(k.ready, 'x').exec()
    const err = await retryDeadLetters({ redis: redisUrl(), pool, all: true }).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(isHedgeyardError(err, 'REDIS_WRONGTYPE')).toBe(true)
    expect(await c.xlen(k.dead)).toBe(2)
    await c.del(k.ready)
    await c.zadd(k.ready, 0, 'w-1')
    const retried = await retryDeadLetters({ redis: redisUrl(), pool, all: true })
    expect(retried).toHaveLength(2)
    expect(await c.xlen(k.dead)).toBe(0)
    await eventually(async () => ran.length === 2)
    expect(ran).toEqual([{ n: 1 }, { n: 2 }])
    await cleanupPool(c, pool)
  })

  it('a retried letter keeps its own attempt limit when another field failed, and no word of job stands for its payload or session', async () => {
    const pool = uniquePool('hostile-retry-words')
    const k = poolKeys('hy', pool)
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    try {
      // Dead for its attempt; its job field also names a payload and a session, which are not its own.
      const job = 'j-1 p - 0 attempt=abc max=5 payload=999 session=evil'
      await addDeadLetter(pool, '1-1', { job, payload: '{"n":1}' })
      expect(await retryDeadLetters({ redis: redisUrl(), pool, all: true })).toHaveLength(1)
      const [[, fields]] = (await c.xrange(queueKey(k, 'a'), '-', '+')) as [[string, string[]]]
      const retried = entryFields(fields)
      expect(retried).toMatchObject({ payload: '{"n":1}', max: '5' })
      expect(retried.session).toBeUndefined()
    } finally {
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})
