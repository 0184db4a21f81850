import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { createServer as createTlsServer } from 'node:tls'
import { promisify } from 'node:util'
import { CLI, eventually, FIXTURES, uniquePool } from '@hedgeyard/testing/helpers'
import { freePort, type LocalRedis, startLocalRedis } from '@hedgeyard/testing/redis-server'
import {
  Dispatcher,
  type ErrorCode,
  type HedgeyardError,
  inspectPool,
  isHedgeyardError,
  poolKeys,
  startWorkers,
  type WorkerGroup,
} from 'hedgeyard'
import { affinityKey, queueKey } from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

// Every server here is the test's own: the tests change maxmemory, ACL users, passwords and
// replication, which the shared server of the other tests must not see.
const run = promisify(execFile)
const echo = async (req: unknown) => req
const cleanups: (() => Promise<unknown> | unknown)[] = []
const afterEachTest: (() => Promise<unknown> | unknown)[] = []
afterEach(async () => {
  for (const f of afterEachTest.splice(0).reverse()) await f()
})
afterAll(async () => {
  for (const f of cleanups.reverse()) await f()
})

let redis: LocalRedis
let admin: Redis
beforeAll(async () => {
  redis = await startLocalRedis()
  cleanups.push(() => redis.stop())
  admin = adminClient(redis.url)
})

function adminClient(url: string): Redis {
  const c = new Redis(url, { maxRetriesPerRequest: 1 })
  c.on('error', () => {})
  cleanups.push(() => c.disconnect())
  return c
}

/** The URL of `user` with `password` on `server`. */
function userUrl(server: LocalRedis, user: string, password: string): string {
  return `redis://${user}:${password}@127.0.0.1:${server.port}`
}

async function workers(
  redisUrl: string,
  pool: string,
  idPrefix = 'w',
  leaseMs = 60_000,
): Promise<WorkerGroup> {
  const group = await startWorkers({
    redis: redisUrl,
    pool,
    handler: echo,
    idPrefix,
    leaseMs,
    blockMs: 200,
  })
  afterEachTest.push(() => group.close())
  return group
}

function dispatcher(redisUrl: string, pool: string, connectTimeoutMs = 5_000): Dispatcher {
  const d = new Dispatcher({ redis: redisUrl, pool, connectTimeoutMs })
  afterEachTest.push(() => d.close())
  return d
}

/** The HedgeyardError `promise` rejects with; fails the test on anything else. */
async function failure(promise: Promise<unknown>): Promise<HedgeyardError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isHedgeyardError(err)) throw new Error(`expected a HedgeyardError, got ${String(err)}`)
  return err
}

/** Asserts the code and prefix a caller got, and that the Redis reply is kept as `cause`. */
function expectReply(err: HedgeyardError | undefined, code: ErrorCode, prefix: string): void {
  if (err === undefined) throw new Error('expected a HedgeyardError')
  expect({ code: err.code, redisPrefix: err.redisPrefix }, err.message).toEqual({ code, redisPrefix: prefix })
  expect((err.cause as Error).name).toBe('ReplyError')
  expect((err.cause as Error).message.startsWith(`${prefix} `)).toBe(true)
}

describe('Redis error replies reach callers as codes', () => {
  it('WRONGTYPE: a key of another type fails the call that needs it with REDIS_WRONGTYPE, and the pool heals the keys it owns', async () => {
    const pool = uniquePool('wrongtype')
    const keys = poolKeys('hy', pool)
    // A short lease: the heartbeat that heals runs every leaseMs / 3.
    const group = await workers(redis.url, pool, 'w', 900)
    const d = dispatcher(redis.url, pool)
    // Something else writes a hash where a session's binding goes: that session's submits fail,
    // before anything is written; other sessions are served.
    await admin.hset(affinityKey(keys, 'chat-1'), 'x', '1')
    expectReply(await failure(d.submit(1, { session: 'chat-1' })), 'REDIS_WRONGTYPE', 'WRONGTYPE')
    expect(await admin.xlen(queueKey(keys, 'w-1'))).toBe(0)
    expect(await d.submit(2, { session: 'chat-2' })).toBe(2)

    // The pool's load ZSET overwritten with a string: the workers' next heartbeat rebuilds it.
    await admin.del(keys.load)
    await admin.set(keys.load, 'x')
    await eventually(async () => (await admin.type(keys.load)) === 'zset')
    expect(await d.submit(3)).toBe(3)

    // With no worker left to heal it, a read of the pool meets it as it is.
    await group.close()
    await admin.del(keys.load)
    await admin.set(keys.load, 'x')
    expectReply(await failure(inspectPool({ redis: redis.url, pool })), 'REDIS_WRONGTYPE', 'WRONGTYPE')
  })

  it('OOM: a full Redis (noeviction) fails submit and startWorkers with REDIS_OOM; reads still work', async () => {
    const pool = uniquePool('oom')
    await workers(redis.url, pool)
    const d = dispatcher(redis.url, pool)
    expect(await d.submit(1)).toBe(1)
    const junk = Array.from({ length: 30 }, (_, i) => `junk:${pool}:${i}`)
    for (const key of junk) await admin.set(key, 'x'.repeat(100_000))
    await admin.config('SET', 'maxmemory-policy', 'noeviction')
    await admin.config('SET', 'maxmemory', '1mb')
    afterEachTest.push(async () => {
      await admin.config('SET', 'maxmemory', '0')
      await admin.del(...junk)
    })

    const refused = await failure(d.submit(2))
    expectReply(refused, 'REDIS_OOM', 'OOM')
    expect(refused.message).toMatch(/^dispatch failed: OOM /)
    expectReply(await failure(workers(redis.url, pool, 'other')), 'REDIS_OOM', 'OOM')
    expect((await inspectPool({ redis: redis.url, pool })).map((w) => w.workerId)).toEqual(['w-1'])
  })

  it('BUSY: a submit while a long script runs fails with REDIS_BUSY', async () => {
    const pool = uniquePool('busy')
    const d = dispatcher(redis.url, pool)
    // Connected first: the ready check of a new connection would meet BUSY too, and wait.
    expect((await failure(d.submit(1))).code).toBe('NO_WORKERS')
    await admin.config('SET', 'busy-reply-threshold', '100')
    afterEachTest.push(() => admin.config('SET', 'busy-reply-threshold', '5000'))
    const runner = adminClient(redis.url)
    const long = runner.eval(
      "local t = redis.call('TIME') local s = t[1] * 1e6 + t[2] repeat local u = redis.call('TIME') until u[1] * 1e6 + u[2] - s > 1e6 return 1",
      0,
    )
    // Until the script has run for busy-reply-threshold, Redis queues the submit behind it.
    const busy = await eventually(async () => {
      const err = await failure(d.submit(2))
      return err.code === 'NO_WORKERS' ? undefined : err
    })
    expectReply(busy, 'REDIS_BUSY', 'BUSY')
    expect(await long).toBe(1)
  })

  it('NOPERM: an ACL user without the pool keys, the results channel or SELECT gets REDIS_NOPERM', async () => {
    const pool = uniquePool('noperm')
    await admin.acl('SETUSER', 'no-keys', 'on', '>pw', '~other:*', '&*', '+@all')
    await admin.acl('SETUSER', 'no-channels', 'on', '>pw', '~*', 'resetchannels', '+@all')
    await admin.acl('SETUSER', 'no-select', 'on', '>pw', '~*', '&*', '+@all', '-select')
    await admin.acl('SETUSER', 'hedgeyard', 'on', '>pw', '~hy:*', '&hy:*', '+@all')
    // A user with every command on the prefix's keys and channels can do everything.
    await workers(userUrl(redis, 'hedgeyard', 'pw'), pool)
    expect(await dispatcher(userUrl(redis, 'hedgeyard', 'pw'), pool).submit(7)).toBe(7)

    const noKeys = userUrl(redis, 'no-keys', 'pw')
    const dispatch = await failure(dispatcher(noKeys, pool).submit(1))
    expectReply(dispatch, 'REDIS_NOPERM', 'NOPERM')
    expect(dispatch.message).toMatch(/^dispatch failed: NOPERM .*keys/)
    expectReply(await failure(workers(noKeys, pool, 'other')), 'REDIS_NOPERM', 'NOPERM')
    expectReply(await failure(inspectPool({ redis: noKeys, pool })), 'REDIS_NOPERM', 'NOPERM')

    // The workers' cancel subscription is refused: the caller gets the code, and nothing of the
    // workers is left registered.
    const noChannels = userUrl(redis, 'no-channels', 'pw')
    expectReply(await failure(workers(noChannels, pool, 'nochan')), 'REDIS_NOPERM', 'NOPERM')
    const left = (await inspectPool({ redis: redis.url, pool })).map((w) => w.workerId)
    expect(left.filter((id) => id.startsWith('nochan'))).toEqual([])

    // The results subscription is refused: before, the raw ReplyError reached the caller.
    const subscribe = await failure(dispatcher(userUrl(redis, 'no-channels', 'pw'), pool).submit(1))
    expectReply(subscribe, 'REDIS_NOPERM', 'NOPERM')
    expect(subscribe.message).toMatch(/^subscribing to .* failed: NOPERM .*channels/)

    // The SELECT of the URL's database is refused: the connection fails at once, rather than
    // waiting for the connect timeout or going on in database 0.
    const noSelect = `${userUrl(redis, 'no-select', 'pw')}/1`
    const connect = await failure(dispatcher(noSelect, pool, 60_000).submit(1))
    expectReply(connect, 'REDIS_NOPERM', 'NOPERM')
    expect(connect.message).toMatch(/^connecting to Redis failed: NOPERM .*'select'/)
    expectReply(await failure(inspectPool({ redis: noSelect, pool })), 'REDIS_NOPERM', 'NOPERM')
  })

  it('CLUSTERDOWN: a Redis Cluster node fails inspectPool with REDIS_CLUSTER', async () => {
    const node = await startLocalRedis(['--cluster-enabled', 'yes'])
    cleanups.push(() => node.stop())
    const err = await failure(inspectPool({ redis: node.url, pool: uniquePool('cluster') }))
    expectReply(err, 'REDIS_CLUSTER', 'CLUSTERDOWN')
  })
})

describe('replicas', () => {
  it('READONLY on a replica is REDIS_READONLY; MASTERDOWN is REDIS_UNAVAILABLE with its prefix', async () => {
    const pool = uniquePool('replica')
    const keys = poolKeys('hy', pool)
    await workers(redis.url, pool)
    // Without this the primary waits 5 s for more replicas before it sends its data.
    await admin.config('SET', 'repl-diskless-sync-delay', '0')
    const replica = await startLocalRedis(['--replicaof', '127.0.0.1', String(redis.port)])
    cleanups.push(() => replica.stop())
    const replicaAdmin = adminClient(replica.url)
    await eventually(async () => (await replicaAdmin.exists(keys.ready)) === 1)

    // A producer pointed at the replica (or left on it by a failover) finds the workers, cannot write.
    expectReply(await failure(dispatcher(replica.url, pool).submit(1)), 'REDIS_READONLY', 'READONLY')
    expectReply(await failure(workers(replica.url, pool, 'other')), 'REDIS_READONLY', 'READONLY')

    await replicaAdmin.config('SET', 'replica-serve-stale-data', 'no')
    await replicaAdmin.replicaof('127.0.0.1', String(await freePort()))
    const err = await eventually(async () => {
      const e = await failure(inspectPool({ redis: replica.url, pool }))
      return e.redisPrefix === 'MASTERDOWN' ? e : undefined
    })
    expectReply(err, 'REDIS_UNAVAILABLE', 'MASTERDOWN')
  })
})

describe('authentication and TLS fail at once, with their reason', () => {
  let locked: LocalRedis
  beforeAll(async () => {
    locked = await startLocalRedis()
    cleanups.push(() => locked.stop())
    const c = new Redis(locked.url)
    await c.config('SET', 'requirepass', 'secret')
    c.disconnect()
  })

  it('a wrong password or none is REDIS_AUTH from submit, startWorkers and inspectPool', async () => {
    const pool = uniquePool('auth')
    const wrong = `redis://:wrong@127.0.0.1:${locked.port}`
    const none = `redis://127.0.0.1:${locked.port}`
    // A connect timeout far longer than the test waits: the failure cannot be a timeout.
    const bad = await failure(dispatcher(wrong, pool, 60_000).submit(1))
    expectReply(bad, 'REDIS_AUTH', 'WRONGPASS')
    expect(bad.message).toBe(
      'connecting to Redis failed: WRONGPASS invalid username-password pair or user is disabled.',
    )
    expectReply(await failure(dispatcher(none, pool, 60_000).submit(1)), 'REDIS_AUTH', 'NOAUTH')
    expectReply(await failure(workers(wrong, pool)), 'REDIS_AUTH', 'WRONGPASS')
    expectReply(await failure(inspectPool({ redis: none, pool })), 'REDIS_AUTH', 'NOAUTH')
    // An ACL user with a wrong password, on the server of the other tests.
    await admin.acl('SETUSER', 'someone', 'on', '>right', '~*', '&*', '+@all')
    expectReply(
      await failure(inspectPool({ redis: userUrl(redis, 'someone', 'wrong'), pool })),
      'REDIS_AUTH',
      'WRONGPASS',
    )
    // The right password works on the same server.
    expect(await inspectPool({ redis: `redis://:secret@127.0.0.1:${locked.port}`, pool })).toEqual([])
  })

  it('the CLI prints the code and the reason', async () => {
    const result = await run(
      process.execPath,
      [CLI, 'inspect', '--redis', `redis://:wrong@127.0.0.1:${locked.port}`, '--pool', 'p'],
      { timeout: 20_000 },
    ).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    )
    expect(result.code).toBe(1)
    expect(result.stderr).toBe(
      'error REDIS_AUTH: connecting to Redis failed: WRONGPASS invalid username-password pair or user is disabled.\n',
    )
  })

  it('a certificate that is not trusted is REDIS_TLS', async () => {
    // A TLS server with a self-signed certificate (test/fixtures/tls): the handshake fails first.
    const server = createTlsServer({
      key: readFileSync(join(FIXTURES, 'tls/self-signed.key')),
      cert: readFileSync(join(FIXTURES, 'tls/self-signed.crt')),
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    cleanups.push(() => new Promise((resolve) => server.close(resolve)))
    const address = server.address()
    const url = `rediss://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`
    const pool = uniquePool('tls')

    const err = await failure(dispatcher(url, pool, 60_000).submit(1))
    expect(err.code, err.message).toBe('REDIS_TLS')
    expect(err.message).toMatch(
      /^connecting to Redis failed: .*\((DEPTH_ZERO_SELF_SIGNED_CERT|CERT_NOT_YET_VALID)\)$/,
    )
    expect(typeof (err.cause as { code?: unknown }).code).toBe('string')
    expect((await failure(inspectPool({ redis: url, pool }))).code).toBe('REDIS_TLS')
    expect((await failure(workers(url, pool))).code).toBe('REDIS_TLS')
  })
})
