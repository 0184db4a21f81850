import { type ChildProcess, spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  aclLog,
  aclLogEntries,
  allowedCommands,
  createRoleUser,
  documentedRules,
  ROLE_PASSWORD,
  ROLES,
  type Role,
  roleUrl,
} from '@hedgeyard/testing/acl-roles'
import { CLI, eventually, uniquePool } from '@hedgeyard/testing/helpers'
import { type LocalRedis, startLocalRedis } from '@hedgeyard/testing/redis-server'
import {
  cancelJob,
  clearPoolLimits,
  Dispatcher,
  drainWorkers,
  forgetDeadWorkers,
  getJob,
  getPoolLimits,
  type Handler,
  type HedgeyardError,
  inspectPool,
  inspectProducers,
  isHedgeyardError,
  type JobContext,
  listDeadLetters,
  openPoolView,
  poolKeys,
  purgeDeadLetters,
  retryDeadLetters,
  setPoolLimits,
  startWorkers,
  type WorkerGroup,
} from 'hedgeyard'
import {
  CONSUMER_GROUP,
  createConnection,
  type EntryFields,
  entryFieldList,
  entryFields,
  LUA_SCRIPTS,
  queueKey,
  registerWorkers,
  resultKey,
} from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'

// docs/security.md gives one ACL user per role. These tests create the users from its lines, on a
// redis-server of their own (ACL users are server-wide), and check that each role does all it does
// with nothing refused (ACL LOG stays empty), and nothing beyond its pool.

interface Req {
  n?: number
  slowMs?: number
  chunks?: number
  chunkDelayMs?: number
  failFirst?: boolean
  cost?: number
}

/** Echoes, sleeps (until aborted), fails its first attempt, reports a cost, or streams chunks. */
const handler: Handler<Req, unknown> = (req, ctx) => {
  if (req.chunks !== undefined) return chunks(req.chunks, req.chunkDelayMs ?? 0)
  return run(req, ctx)
}

async function* chunks(n: number, delayMs: number): AsyncGenerator<number, number> {
  for (let i = 0; i < n; i++) {
    if (delayMs > 0) await sleep(delayMs)
    yield i
  }
  return n
}

async function run(req: Req, ctx: JobContext): Promise<Req> {
  if (req.slowMs !== undefined) await sleep(req.slowMs, undefined, { signal: ctx.signal })
  if (req.failFirst && ctx.attempt === 1)
    throw Object.assign(new Error('first attempt fails'), { retryable: true })
  if (req.cost !== undefined) ctx.reportCost(req.cost)
  return req
}

const FUTURE = String(Date.now() + 600_000)

let server: LocalRedis
let admin: Redis
const cleanups: (() => unknown)[] = []
beforeAll(async () => {
  // With every channel given to new users by default: the lines must take them away themselves.
  server = await startLocalRedis(['--acl-pubsub-default', 'allchannels'])
  admin = new Redis(server.url)
})
afterAll(async () => {
  for (const f of cleanups.reverse()) await f()
  admin.disconnect()
  await server.stop()
})

/** What a call fails with; fails the test when it succeeds. */
async function failure(promise: Promise<unknown>): Promise<HedgeyardError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isHedgeyardError(err)) throw new Error(`expected a HedgeyardError, got ${String(err)}`)
  return err
}

/** Registers workers that never run anything, with a lease already over (as a worker that died). */
async function deadWorker(pool: string, workerId: string, entries: EntryFields[]): Promise<void> {
  const conn = createConnection(server.url, 'command', 'hy:test-dead')
  await conn.connect()
  const k = poolKeys('hy', pool)
  await registerWorkers(conn, k, { leaseMs: 60_000, host: 'gone', pid: 1, concurrency: 1, capacity: 100 }, [
    workerId,
  ])
  conn.disconnect()
  for (const fields of entries) {
    await admin
      .multi()
      .xadd(queueKey(k, workerId), '*', ...entryFieldList(fields))
      .zincrby(k.load, 1, workerId)
      .exec()
  }
  await admin.zadd(k.alive, 1, workerId)
}

describe("each role's documented rules cover all it does", () => {
  const pool = uniquePool('acl')
  const keys = poolKeys('hy', pool)
  const ref = (role: Role) => ({ redis: roleUrl(server.port, role), pool })
  let group: WorkerGroup
  beforeAll(async () => {
    for (const role of ROLES) await createRoleUser(admin, role, pool)
  })
  beforeEach(async () => {
    await admin.call('ACL', 'LOG', 'RESET')
  })
  afterEach(async () => {
    expect(await aclLog(admin)).toEqual([])
  })

  it('worker: registers, reads, claims, completes, streams, and rescues a dead worker (a bad entry to the dead letters)', async () => {
    await deadWorker(pool, 'gone-1', [
      { id: 'rescued-1', payload: '{"n":1}', producer: 'p-x', deadline: FUTURE },
      { id: 'bad-1', payload: '{"n":2}', producer: 'p-x', deadline: 'abc' },
      { id: 'bad-2', payload: '{"n":3}', producer: 'p-x', deadline: 'abc' },
    ])
    group = await startWorkers({
      redis: roleUrl(server.port, 'worker'),
      pool,
      handler,
      count: 3,
      concurrency: 2,
      idPrefix: 'w',
      leaseMs: 900,
      blockMs: 200,
    })
    cleanups.push(() => group.close())
    // The heartbeat's rescue ran the good job on a live worker and dead-lettered the two others.
    const stored = await eventually(() => admin.get(resultKey(keys, 'rescued-1')))
    expect(JSON.parse(stored as string)).toMatchObject({ ok: true, value: { n: 1 } })
    await eventually(async () => (await admin.xlen(keys.dead)) === 2)
    await eventually(async () => (await admin.zscore(keys.load, 'gone-1')) === null)
  })

  it('producer: submit (plain, session, hedged, tied, retried, with a tenant and a cost), stream, resume, abort, time out, cancel, read', async () => {
    const generous = { limit: 1_000_000, periodMs: 60_000, burst: 1_000_000 }
    await setPoolLimits(ref('admin'), { cost: generous })
    await setPoolLimits(ref('admin'), { concurrency: 10, rate: generous }, { limitClass: 'free' })
    const d = new Dispatcher<Req, unknown>({ redis: roleUrl(server.port, 'producer'), pool })
    cleanups.push(() => d.close())
    expect(await d.submit({ n: 1 })).toEqual({ n: 1 })
    expect(await d.submit({ n: 2 }, { session: 'chat-1' })).toEqual({ n: 2 })
    expect(await d.submit({ slowMs: 200 }, { hedge: { delayMs: 20, maxAttempts: 2 } })).toEqual({
      slowMs: 200,
    })
    expect(await d.submit({ n: 3 }, { hedge: { mode: 'tied', delayMs: 0, maxAttempts: 2 } })).toEqual({
      n: 3,
    })
    expect(await d.submit({ failFirst: true }, { retry: { maxAttempts: 2, backoffMs: 10 } })).toEqual({
      failFirst: true,
    })
    expect(await d.submit({ cost: 7 }, { cost: 1, limitKey: 'tenant-1', limitClass: 'free' })).toEqual({
      cost: 7,
    })

    // Two streams at once: the second joins the first's blocked read (CLIENT UNBLOCK).
    const first = d.stream<number, number>({ chunks: 3, chunkDelayMs: 100 })
    const second = d.stream<number, number>({ chunks: 2 })
    const seen: number[] = []
    for await (const c of second) seen.push(c.data)
    for await (const c of first) seen.push(c.data)
    expect({ seen, first: await first.result, second: await second.result }).toEqual({
      seen: [0, 1, 0, 1, 2],
      first: 3,
      second: 2,
    })
    const resumed: number[] = []
    for await (const c of d.resume<number>(first.jobId, { after: 2 })) resumed.push(c.data)
    expect(resumed).toEqual([2])
    expect(await d.resumes(first.jobId)).toBe(1)
    const hedged = d.stream<number, number>({ chunks: 2 }, { hedge: { delayMs: 1, maxAttempts: 2 } })
    for await (const _ of hedged) {
      // drained
    }
    expect(await hedged.result).toBe(2)
    expect(await d.getJob(first.jobId)).toMatchObject({ status: 'completed' })

    // Three slow jobs of one session on one worker of concurrency 2: the third waits in its
    // stream, and is cancelled by id from there; the others are aborted while they run.
    const controller = new AbortController()
    const running = [1, 2].map((n) =>
      failure(d.submit({ n, slowMs: 5_000 }, { session: 'busy', signal: controller.signal })),
    )
    const queued = failure(d.submit({ n: 3, slowMs: 5_000 }, { session: 'busy' }))
    const queuedId = await eventually(async () => {
      for (const w of await admin.zrange(keys.load, '0', '-1')) {
        const entries = await admin.xrange(queueKey(keys, w), '-', '+')
        const pending = (await admin.xpending(queueKey(keys, w), CONSUMER_GROUP, '-', '+', 10)) as [string][]
        // The third job, unread (the worker may not have read the first two yet either).
        const unread = entries.find(
          ([id, fields]) =>
            !pending.some(([p]) => p === id) && JSON.parse(entryFields(fields).payload ?? '{}').n === 3,
        )
        if (unread && pending.length === 2) return entryFields(unread[1]).id
      }
      return undefined
    })
    expect(await d.cancel(queuedId as string)).toBe('cancelled')
    expect((await queued).code).toBe('CANCELLED')
    controller.abort()
    expect((await Promise.all(running)).map((e) => e.code)).toEqual(['ABORTED', 'ABORTED'])
    expect((await failure(d.submit({ slowMs: 2_000 }, { timeoutMs: 200 }))).code).toBe('TIMEOUT')
    expect((await d.workerMetrics()).map((w) => w.workerId).sort()).toEqual(['w-1', 'w-2', 'w-3'])
    // close reports the producer's counters.
    await d.close()
  })

  it('monitor: inspect, producers, the pool view of top, exporter and dashboard, limits, dead letters, a job', async () => {
    const r = ref('monitor')
    expect((await inspectPool(r)).length).toBe(3)
    expect((await inspectProducers(r)).length).toBe(1)
    const view = await openPoolView(r, 'top')
    const snapshot = await view.snapshot().finally(() => view.close())
    expect({ workers: snapshot.workers.length, deadLetters: snapshot.deadLetters }).toEqual({
      workers: 3,
      deadLetters: 2,
    })
    expect(await getPoolLimits(r)).toMatchObject({ cost: { limit: 1_000_000 } })
    expect((await listDeadLetters(r)).map((l) => l.jobId)).toEqual(['bad-1', 'bad-2'])
    expect(await getJob(r, 'rescued-1')).toMatchObject({ status: 'completed' })
  })

  it('admin: limits, dead letters retried and purged, cancel, forget-dead, drain', async () => {
    const r = ref('admin')
    expect(await getPoolLimits(r, { limitClass: 'free' })).toMatchObject({ concurrency: 10 })
    expect(await clearPoolLimits(r, { limitClass: 'free' })).toBe(true)
    expect(await clearPoolLimits(r)).toBe(true)
    const [bad1, bad2] = await listDeadLetters(r)
    expect((await retryDeadLetters({ ...r, deadIds: [bad1?.deadId as string] })).length).toBe(1)
    expect(await purgeDeadLetters({ ...r, deadIds: [bad2?.deadId as string] })).toBe(1)
    expect(await purgeDeadLetters({ ...r, all: true })).toBe(0)
    expect(await cancelJob(r, 'no-such-job')).toBe('unknown')
    expect(await getJob(r, 'rescued-1')).toMatchObject({ status: 'completed' })
    await deadWorker(pool, 'gone-2', [
      { id: 'rescued-2', payload: '{"n":4}', producer: 'p-x', deadline: FUTURE },
    ])
    await forgetDeadWorkers(r)
    await eventually(async () => (await admin.zscore(keys.load, 'gone-2')) === null)
    expect(await drainWorkers(r, ['w-3'])).toEqual(['w-3'])
    await eventually(async () => (await inspectPool(r)).length === 2)
  })

  it('gateway: jobs over HTTP, and its dashboard with the drain button', async () => {
    const key = 'acl-test-key-0123456789'
    const child: ChildProcess = spawn(
      process.execPath,
      [CLI, 'gateway', '--redis', roleUrl(server.port, 'gateway'), '--pool', pool, '--port', '0'],
      { env: { ...process.env, HEDGEYARD_API_KEYS: `alice:${key}` }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    child.stdout?.on('data', (d) => {
      output += d
    })
    child.stderr?.on('data', (d) => {
      output += d
    })
    cleanups.push(() => child.kill('SIGKILL'))
    const url = await eventually(() => /"url":"(http:[^"]+)"/.exec(output)?.[1], 15_000)
    const headers = { 'content-type': 'application/json', 'x-goog-api-key': key }
    const get = async (path: string) => (await fetch(`${url}${path}`, { headers })).json()
    const post = async (path: string, body: unknown) =>
      (await fetch(`${url}${path}`, { method: 'POST', headers, body: JSON.stringify(body) })).json()

    const { job_id } = (await post('/generate', {
      contents: [{ role: 'user', parts: [{ text: 'hi' }] }],
    })) as {
      job_id: string
    }
    await eventually(
      async () => ((await get(`/jobs/${job_id}`)) as { status: string }).status === 'Completed',
    )
    expect(((await get('/workers')) as unknown[]).length).toBe(2)
    expect(await get('/readyz')).toMatchObject({ status: 'ready' })
    const events = await fetch(`${url}/dashboard/events`, { headers })
    const reader = (events.body as ReadableStream<Uint8Array>).getReader()
    let text = ''
    while (!text.includes('"workers"')) text += new TextDecoder().decode((await reader.read()).value)
    await reader.cancel()
    expect(await get('/dashboard/api/dead')).toEqual({ deadLetters: [] })
    expect(await post('/dashboard/api/drain', { workerId: 'w-2' })).toEqual({ draining: 'w-2' })
    await eventually(async () => (await inspectPool(ref('monitor'))).length === 1)
    // Its settings are printed with the password masked.
    expect(output).toContain(`redis://hy-gateway:****@127.0.0.1:${server.port}`)
    expect(output).not.toContain(ROLE_PASSWORD)
    child.kill('SIGTERM')
  })

  it('worker: drains and deregisters on close', async () => {
    await group.close()
    expect(await inspectPool(ref('monitor'))).toEqual([])
  })
})

describe('the rules name every command of the scripts each role runs', () => {
  // A script runs its commands as its caller: Redis checks each against the caller's ACL user.
  const SCRIPTS: Record<Role, (keyof typeof LUA_SCRIPTS)[]> = {
    producer: ['dispatch', 'cancel', 'correctCost'],
    worker: ['register', 'heartbeat', 'claim', 'complete', 'chunk', 'rescue', 'deregister', 'drain'],
    monitor: [],
    admin: ['drain', 'retryDead', 'rescue', 'cancel'],
    gateway: ['dispatch', 'cancel', 'correctCost', 'drain', 'retryDead'],
  }

  /** The commands a script may call: `redis.call('XADD', ...)`, or built in a table `{ 'XADD', ... }` and unpacked. */
  function commandsOf(lua: string): Set<string> {
    const found = new Set<string>()
    for (const m of lua.matchAll(
      /(?:redis\.p?call\(|pcall\(redis\.call,\s*|=\s*\{\s*)'([A-Z]+)'(?:,\s*'([A-Z]+)')?/g,
    )) {
      const name = (m[1] as string).toLowerCase()
      found.add(name === 'xgroup' || name === 'xinfo' ? `${name}|${(m[2] as string).toLowerCase()}` : name)
    }
    return found
  }

  it.each(ROLES)('%s', (role) => {
    const allowed = allowedCommands(role, false)
    const missing = new Set<string>()
    for (const name of SCRIPTS[role]) {
      expect(LUA_SCRIPTS[name], name).toBeDefined()
      for (const command of commandsOf(LUA_SCRIPTS[name].lua))
        if (!allowed.has(command)) missing.add(`${name}: ${command}`)
    }
    if (SCRIPTS[role].length > 0) for (const c of ['evalsha', 'eval']) if (!allowed.has(c)) missing.add(c)
    expect([...missing]).toEqual([])
  })
})

describe('without the optional commands', () => {
  /** One run of a pool with users made from the rules alone (`min`) or with the optional line (`full`). */
  async function runPool(variant: 'full' | 'min') {
    const pool = uniquePool(`acl-${variant}`)
    const user = (role: Role) => `hy-${role}-${variant}`
    for (const role of ['producer', 'worker'] as const) {
      await createRoleUser(admin, role, pool, { withOptional: variant === 'full', user: user(role) })
    }
    await admin.call('ACL', 'LOG', 'RESET')
    const warnings: string[] = []
    const warn = vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
      warnings.push(args.map(String).join(' '))
    })
    try {
      const group = await startWorkers({
        redis: roleUrl(server.port, 'worker', user('worker')),
        pool,
        handler,
        concurrency: 4,
        blockMs: 2_000,
      })
      const d = new Dispatcher<Req, unknown>({
        redis: roleUrl(server.port, 'producer', user('producer')),
        pool,
      })
      expect(await d.submit({ n: 1 })).toEqual({ n: 1 })
      // A stream whose next chunk is 3 s away keeps the producer's reader blocked on it; a second
      // stream joins that read at once with CLIENT UNBLOCK, else when the first stream's chunk comes.
      const slow = d.stream<number, number>({ chunks: 1, chunkDelayMs: 3_000 })
      await sleep(300)
      const startedAt = Date.now()
      const quick = d.stream<number, number>({ chunks: 1 })
      let firstChunkMs = 0
      for await (const _ of quick) firstChunkMs ||= Date.now() - startedAt
      expect(await quick.result).toBe(1)
      expect(await slow.result).toBe(1)
      const names = String(await admin.call('CLIENT', 'LIST'))
        .split('\n')
        .filter((l) => l.includes(` user=${user('producer')} `) || l.includes(` user=${user('worker')} `))
        .map((l) => /(?:^| )name=(\S*)/.exec(l)?.[1] ?? '')
      const closingAt = Date.now()
      await group.close()
      const closeMs = Date.now() - closingAt
      await d.close()
      const refused = await aclLogEntries(admin)
      return { firstChunkMs, closeMs, names, refused, warnings }
    } finally {
      warn.mockRestore()
    }
  }

  it('every operation still works: new streams wait for the reader, workers close a BLOCK later, a warning per connection, no names', async () => {
    const full = await runPool('full')
    const min = await runPool('min')
    console.log(
      [
        'optional commands: with / without',
        `  a second stream's first chunk: ${full.firstChunkMs} ms / ${min.firstChunkMs} ms`,
        `  workers' close (blockMs 2000): ${full.closeMs} ms / ${min.closeMs} ms`,
        `  ioredis ready-check warnings: ${full.warnings.length} / ${min.warnings.length}`,
        `  refused (ACL LOG): ${full.refused.length} / ${min.refused.map((e) => `${e.object} x${e.count}`).join(', ')}`,
      ].join('\n'),
    )
    expect(full.refused).toEqual([])
    expect(full.warnings).toEqual([])
    expect(full.names.every((n) => n.startsWith('hy:'))).toBe(true)
    // Without them, nothing else is refused: only the optional commands are in the log.
    const optional = new Set(
      (['producer', 'worker'] as const).flatMap((r) => documentedRules(r).optional.map((w) => w.slice(1))),
    )
    expect(min.refused.filter((e) => !optional.has(e.object))).toEqual([])
    expect(min.refused.map((e) => e.object)).toEqual(expect.arrayContaining(['info', 'client|setname']))
    expect(min.warnings.length).toBeGreaterThan(0)
    expect(min.warnings[0]).toMatch(/^Skipping the ready check because INFO command fails/)
    expect(min.names.every((n) => n === '')).toBe(true)
  })
})

describe('what a role cannot do', () => {
  const pool = uniquePool('acl-bounds')
  const other = uniquePool('acl-other')
  const keys = poolKeys('hy', pool)
  const raw = (role: Role) => {
    const c = new Redis(roleUrl(server.port, role), { maxRetriesPerRequest: 0 })
    c.on('error', () => {})
    cleanups.push(() => c.disconnect())
    return c
  }
  const refusal = (p: Promise<unknown>) =>
    p.then(
      () => 'allowed',
      (e: Error) => e.message.split(' ')[0],
    )
  let group: WorkerGroup
  beforeAll(async () => {
    for (const role of ROLES) await createRoleUser(admin, role, pool)
    group = await startWorkers({
      redis: roleUrl(server.port, 'worker'),
      pool,
      handler,
      idPrefix: 'w',
      blockMs: 200,
    })
    cleanups.push(() => group.close())
  })

  it("a producer cannot take a worker's jobs, acknowledge or claim them; it reads queued entries only by id range, for cancel", async () => {
    const q = queueKey(keys, 'w-1')
    const producer = raw('producer')
    expect(
      await Promise.all([
        refusal(
          producer.call('XREADGROUP', 'GROUP', CONSUMER_GROUP, 'intruder', 'COUNT', '1', 'STREAMS', q, '>'),
        ),
        refusal(producer.call('XACK', q, CONSUMER_GROUP, '0-1')),
        refusal(producer.call('XCLAIM', q, CONSUMER_GROUP, 'intruder', '0', '0-1')),
        refusal(producer.call('XAUTOCLAIM', q, CONSUMER_GROUP, 'intruder', '0', '0')),
        refusal(producer.call('XGROUP', 'CREATECONSUMER', q, CONSUMER_GROUP, 'intruder')),
        refusal(producer.call('DEL', q)),
        refusal(producer.call('XRANGE', q, '-', '+', 'COUNT', '1')),
      ]),
    ).toEqual(['NOPERM', 'NOPERM', 'NOPERM', 'NOPERM', 'NOPERM', 'allowed', 'allowed'])
  })

  it('a monitor writes nothing: drain, purge, limits and cancel are refused, the worker runs on', async () => {
    const r = { redis: roleUrl(server.port, 'monitor'), pool }
    for (const call of [
      () => drainWorkers(r, ['w-1']),
      () => purgeDeadLetters({ ...r, all: true }),
      () => setPoolLimits(r, { rate: { limit: 1, periodMs: 1000 } }),
      () => cancelJob(r, 'job-1'),
    ]) {
      expect((await failure(call())).code).toBe('REDIS_NOPERM')
    }
    expect((await inspectPool(r)).map((w) => w.state)).toEqual(['active'])
    expect(await getPoolLimits(r)).toEqual({})
  })

  it("no role reaches another pool's keys or channels, nor keys outside its pool, not even through a script", async () => {
    const otherKeys = poolKeys('hy', other)
    for (const role of ROLES) {
      const c = raw(role)
      const allowed = allowedCommands(role)
      const tries = [
        refusal(c.get(otherKeys.load)),
        refusal(c.get('session:1')),
        allowed.has('eval')
          ? refusal(c.eval("return redis.call('GET', KEYS[1])", 1, otherKeys.load))
          : 'NOPERM',
        // Keys a script derives are checked where it uses them.
        allowed.has('eval')
          ? c.eval(`return redis.call('GET', '${otherKeys.load}')`, 0).then(
              () => 'allowed',
              (e: Error) => (/can't access at least one of the keys/.test(e.message) ? 'NOPERM' : e.message),
            )
          : 'NOPERM',
        allowed.has('subscribe') ? refusal(raw(role).subscribe(`${otherKeys.base}results:p-1`)) : 'NOPERM',
      ]
      expect(await Promise.all(tries), role).toEqual(['NOPERM', 'NOPERM', 'NOPERM', 'NOPERM', 'NOPERM'])
    }
    // The library says so at once, whatever the role tries on the other pool.
    const onOther = (role: Role) => ({ redis: roleUrl(server.port, role), pool: other })
    const d = new Dispatcher({ ...onOther('producer'), connectTimeoutMs: 60_000 })
    cleanups.push(() => d.close())
    const errors = [
      await failure(d.submit(1)),
      await failure(startWorkers({ ...onOther('worker'), handler })),
      await failure(inspectPool(onOther('monitor'))),
      await failure(drainWorkers(onOther('admin'), ['w-1'])),
    ]
    expect(errors.map((e) => e.code)).toEqual([
      'REDIS_NOPERM',
      'REDIS_NOPERM',
      'REDIS_NOPERM',
      'REDIS_NOPERM',
    ])
    expect(await admin.exists(otherKeys.load, otherKeys.ready, otherKeys.alive)).toBe(0)
  })
})
