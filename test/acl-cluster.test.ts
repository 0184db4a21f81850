import { setTimeout as sleep } from 'node:timers/promises'
import { aclLog, createRoleUser, ROLE_PASSWORD, ROLES, type Role } from '@hedgeyard/testing/acl-roles'
import { eventually, uniquePool } from '@hedgeyard/testing/helpers'
import { startRedisCluster, type TestCluster } from '@hedgeyard/testing/redis-cluster'
import {
  cancelJob,
  Dispatcher,
  drainWorkers,
  forgetDeadWorkers,
  getJob,
  getPoolLimits,
  type Handler,
  type HedgeyardError,
  inspectPool,
  isHedgeyardError,
  listDeadLetters,
  poolKeys,
  setPoolLimits,
  startWorkers,
  type WorkerGroup,
} from 'hedgeyard'
import {
  connectReady,
  createConnection,
  entryFieldList,
  entryFields,
  queueKey,
  registerWorkers,
  resultKey,
} from 'hedgeyard/internal'
import { Cluster, Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// docs/security.md's rules of each role, with the third line it gives for a cluster, applied on
// every node of a local cluster (ACL users are per node): each role does what it does with
// nothing refused on any node.

interface Req {
  n?: number
  slowMs?: number
  chunks?: number
}

const handler: Handler<Req, unknown> = (req, ctx) => {
  if (req.chunks !== undefined) return chunks(req.chunks)
  return run(req, ctx.signal)
}

async function* chunks(n: number): AsyncGenerator<number, number> {
  for (let i = 0; i < n; i++) {
    await sleep(20)
    yield i
  }
  return n
}

async function run(req: Req, signal: AbortSignal): Promise<Req> {
  if (req.slowMs !== undefined) await sleep(req.slowMs, undefined, { signal })
  return req
}

let cluster: TestCluster
let admin: Cluster
/** One client per node, as the default user, for ACL SETUSER and ACL LOG. */
let nodes: Redis[] = []
const cleanups: (() => unknown)[] = []
beforeAll(async () => {
  cluster = await startRedisCluster()
  admin = new Cluster(cluster.nodes.map((n) => ({ host: '127.0.0.1', port: n.server.port })))
  admin.on('error', () => {})
  nodes = cluster.nodes.map((n) => new Redis(n.server.port))
})
afterAll(async () => {
  for (const f of cleanups.reverse()) await f()
  for (const n of nodes) n.disconnect()
  admin?.disconnect()
  await cluster?.stop()
})

/** The cluster URL of a role's user (or of the user named `user`). */
function roleUrl(role: Role, user = `hy-${role}`): string {
  return cluster.url.replace('redis+cluster://', `redis+cluster://${user}:${ROLE_PASSWORD}@`)
}

/** ACL LOG of every node, each entry prefixed with the node. */
async function aclLogs(): Promise<string[]> {
  const all = await Promise.all(
    nodes.map(async (n, i) => (await aclLog(n)).map((e) => `${cluster.nodes[i]?.address}: ${e}`)),
  )
  return all.flat()
}

async function failure(promise: Promise<unknown>): Promise<HedgeyardError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isHedgeyardError(err)) throw new Error(`expected a HedgeyardError, got ${String(err)}`)
  return err
}

describe('cluster: ACL rules', () => {
  it('cluster: each role works with its rules on every node, with ACL LOG empty on every node', async () => {
    const pool = uniquePool('aclc')
    const keys = poolKeys('hy', pool)
    for (const n of nodes) {
      for (const role of ROLES) await createRoleUser(n, role, pool, { onCluster: true })
      await n.call('ACL', 'LOG', 'RESET')
    }
    const ref = (role: Role) => ({ redis: roleUrl(role), pool })

    // A worker that died with a job queued: the live workers' heartbeat rescues it.
    const setup = createConnection(cluster.url, 'command', 'hy:test-dead')
    cleanups.push(() => setup.disconnect())
    await connectReady(setup, 10_000)
    const registration = { leaseMs: 60_000, host: 'gone', pid: 1, concurrency: 1, capacity: 100 }
    await registerWorkers(setup, keys, registration, ['gone-1'])
    const deadline = String(Date.now() + 600_000)
    await admin
      .multi()
      .xadd(
        queueKey(keys, 'gone-1'),
        '*',
        ...entryFieldList({ id: 'rescued-1', payload: '{"n":1}', producer: 'p-x', deadline }),
      )
      .xadd(
        queueKey(keys, 'gone-1'),
        '*',
        ...entryFieldList({ id: 'bad-1', payload: '{}', producer: 'p-x', deadline: 'abc' }),
      )
      .zincrby(keys.load, 2, 'gone-1')
      .zadd(keys.alive, 1, 'gone-1')
      .exec()

    // Worker: register, read, complete, stream, rescue, cancel subscription.
    const group: WorkerGroup = await startWorkers({
      redis: roleUrl('worker'),
      pool,
      handler,
      count: 3,
      concurrency: 2,
      idPrefix: 'w',
      leaseMs: 900,
      blockMs: 200,
    })
    cleanups.push(() => group.close())
    await eventually(() => admin.get(resultKey(keys, 'rescued-1')))
    await eventually(async () => (await admin.xlen(keys.dead)) === 1)

    // Admin: limits, a cancel, forget-dead.
    const generous = { limit: 1_000_000, periodMs: 60_000, burst: 1_000_000 }
    await setPoolLimits(ref('admin'), { cost: generous })

    // Producer: plain, session, hedged submits; two streams at once; abort, cancel, time out, read.
    const d = new Dispatcher<Req, unknown>({ redis: roleUrl('producer'), pool })
    cleanups.push(() => d.close())
    expect(await d.submit({ n: 1 })).toEqual({ n: 1 })
    expect(await d.submit({ n: 2 }, { session: 'chat-1' })).toEqual({ n: 2 })
    expect(await d.submit({ slowMs: 200 }, { hedge: { delayMs: 20, maxAttempts: 2 } })).toEqual({
      slowMs: 200,
    })
    const first = d.stream<number, number>({ chunks: 3 })
    const second = d.stream<number, number>({ chunks: 2 })
    const seen: number[] = []
    for await (const c of second) seen.push(c.data)
    for await (const c of first) seen.push(c.data)
    expect(seen).toEqual([0, 1, 0, 1, 2])
    expect(await d.getJob(first.jobId)).toMatchObject({ status: 'completed' })
    const controller = new AbortController()
    const aborted = failure(d.submit({ slowMs: 5_000 }, { signal: controller.signal }))
    const slow = d.submit({ n: 9, slowMs: 5_000 })
    await sleep(200)
    controller.abort()
    expect((await aborted).code).toBe('ABORTED')
    expect((await failure(d.submit({ slowMs: 2_000 }, { timeoutMs: 200 }))).code).toBe('TIMEOUT')
    expect((await d.workerMetrics()).map((w) => w.workerId).sort()).toEqual(['w-1', 'w-2', 'w-3'])

    // Admin cancels the slow job; the monitor reads.
    const slowId = await eventually(async () => {
      for (const w of await admin.zrange(keys.load, '0', '-1')) {
        for (const [, fields] of await admin.xrange(queueKey(keys, w), '-', '+')) {
          const id = entryFields(fields).id
          if (fields.includes('{"n":9,"slowMs":5000}')) return id
        }
      }
      return undefined
    })
    expect(await cancelJob(ref('admin'), slowId as string)).toBe('cancelled')
    expect((await failure(slow)).code).toBe('CANCELLED')
    expect((await inspectPool(ref('monitor'))).length).toBe(3)
    expect(await getPoolLimits(ref('monitor'))).toMatchObject({ cost: { limit: 1_000_000 } })
    expect((await listDeadLetters(ref('monitor'))).map((l) => l.jobId)).toEqual(['bad-1'])
    expect(await getJob(ref('monitor'), 'rescued-1')).toMatchObject({ status: 'completed' })
    await forgetDeadWorkers(ref('admin'))
    expect(await drainWorkers(ref('admin'), ['w-3'])).toEqual(['w-3'])
    await eventually(async () => (await inspectPool(ref('admin'))).length === 2)
    await d.close()
    await group.close()

    expect(await aclLogs()).toEqual([])
  })

  it('a worker whose user may not ask which node owns its slot fails to start with REDIS_NOPERM, not MOVED', async () => {
    const pool = uniquePool('aclc-noslot')
    const user = 'hy-worker-noslot'
    for (const n of nodes) {
      await createRoleUser(n, 'worker', pool, { onCluster: true, user })
      await n.call('ACL', 'SETUSER', user, '-cluster|keyslot')
    }
    const err = await failure(startWorkers({ redis: roleUrl('worker', user), pool, handler }))
    expect(err.code).toBe('REDIS_NOPERM')
    expect(err.message).toContain('cluster|keyslot')
  })
})
