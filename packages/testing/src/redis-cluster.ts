/**
 * A local Redis Cluster for the tests that need one: 3 primaries and 3 replicas, each a
 * `redis-server --cluster-enabled yes` from the shared launcher (its own port, cluster bus port and
 * data directory), joined by `redis-cli --cluster create`. No Docker. Started only by the tests
 * that ask for it.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { type RedisServer, startRedisServer } from '@hedgeyard/redis-server'
import { Redis } from 'ioredis'

const run = promisify(execFile)

/** One node of a {@link TestCluster}. */
export interface ClusterNode {
  server: RedisServer
  /** `127.0.0.1:<port>`, as the cluster names it. */
  address: string
}

/** A local cluster: its nodes and the ways to reach, inspect and stop it. */
export interface TestCluster {
  nodes: ClusterNode[]
  /** Every node's URL, as the `redis` option's `cluster` list takes them. */
  urls: string[]
  /** `redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...`: the whole cluster in one URL. */
  url: string
  /** The node that is the primary of `key`'s slot now. */
  primaryOf(key: string): Promise<ClusterNode>
  /** A replica of `primary`, as the cluster reports it now. */
  replicaOf(primary: ClusterNode): Promise<ClusterNode>
  /**
   * Waits until every node still running says `cluster_state:ok`, they agree on the slot owners,
   * and every replica is in sync with its primary (only then may it take over).
   */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** Stops every node and removes their directories. */
  stop(): Promise<void>
}

/** Options of {@link startRedisCluster}. */
export interface TestClusterOptions {
  /** `cluster-node-timeout`: how long a primary may be unreachable before its replica takes over. */
  nodeTimeoutMs: number
}

const DEFAULTS: Readonly<TestClusterOptions> = Object.freeze({ nodeTimeoutMs: 1_000 })

async function ask<T>(port: number, f: (c: Redis) => Promise<T>): Promise<T> {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  c.on('error', () => {})
  try {
    await c.connect()
    return await f(c)
  } finally {
    c.disconnect()
  }
}

function isRunning(node: ClusterNode): boolean {
  try {
    process.kill(node.server.pid, 0)
    return true
  } catch {
    return false
  }
}

/** Starts 3 primaries and 3 replicas and resolves once the cluster is healthy. */
export async function startRedisCluster(options: Partial<TestClusterOptions> = {}): Promise<TestCluster> {
  const o = { ...DEFAULTS, ...options }
  const nodes: ClusterNode[] = []
  const stop = async () => {
    await Promise.all(nodes.map((n) => n.server.stop()))
  }
  try {
    for (let i = 0; i < 6; i++) {
      // The launcher chooses the bus port apart (port + 10000, the default, may be taken).
      const server = await startRedisServer({
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          String(o.nodeTimeoutMs),
          // A replica that never finished its first sync may not take over: make it at once.
          '--repl-diskless-sync-delay',
          '0',
        ],
      })
      nodes.push({ server, address: `127.0.0.1:${server.port}` })
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...nodes.map((n) => n.address),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ])
  } catch (err) {
    await stop()
    throw err
  }

  const byAddress = (address: string): ClusterNode => {
    const node = nodes.find((n) => n.address === address)
    if (node === undefined) throw new Error(`the cluster names a node it was not made of: ${address}`)
    return node
  }
  /** `CLUSTER NODES` of a running node, as { address, id, flags, master id, slots }. */
  const clusterNodes = async () => {
    const from = nodes.find(isRunning)
    if (from === undefined) throw new Error('no node of the cluster is running')
    const text = String(await ask(from.server.port, (c) => c.call('CLUSTER', 'NODES')))
    return text
      .trim()
      .split('\n')
      .map((line) => {
        const [id = '', addr = '', flags = '', master = '', , , , , ...slots] = line.split(' ')
        return { id, address: addr.split('@')[0] ?? '', flags: flags.split(','), master, slots }
      })
  }

  const cluster: TestCluster = {
    nodes,
    urls: nodes.map((n) => `redis://${n.address}`),
    url: `redis+cluster://${nodes.map((n) => n.address).join(',')}`,
    async primaryOf(key) {
      const from = nodes.find(isRunning) as ClusterNode
      const slot = Number(await ask(from.server.port, (c) => c.call('CLUSTER', 'KEYSLOT', key)))
      for (const n of await clusterNodes()) {
        if (!n.flags.includes('master') || n.flags.includes('fail')) continue
        for (const range of n.slots) {
          const [lo, hi = lo] = range.split('-').map(Number)
          if (lo !== undefined && hi !== undefined && slot >= lo && slot <= hi) return byAddress(n.address)
        }
      }
      throw new Error(`no primary owns slot ${slot}`)
    },
    async replicaOf(primary) {
      const all = await clusterNodes()
      const id = all.find((n) => n.address === primary.address)?.id
      const replica = all.find((n) => n.master === id && !n.flags.includes('fail'))
      if (replica === undefined) throw new Error(`${primary.address} has no replica`)
      return byAddress(replica.address)
    },
    async waitHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      let last = ''
      while (Date.now() < deadline) {
        try {
          const running = nodes.filter(isRunning)
          const states = await Promise.all(
            running.map((n) => ask(n.server.port, (c) => c.call('CLUSTER', 'INFO'))),
          )
          const views = await Promise.all(
            running.map((n) => ask(n.server.port, (c) => c.call('CLUSTER', 'SLOTS'))),
          )
          const owners = views.map((v) =>
            JSON.stringify(
              (v as [number, number, [string, number]][]).map((s) => [s[0], s[1], s[2][1]]).sort(),
            ),
          )
          if (states.every((s) => String(s).includes('cluster_state:ok')) && new Set(owners).size === 1)
            return
          last = `states: ${states.map((s) => /cluster_state:(\w+)/.exec(String(s))?.[1]).join(',')}`
        } catch (err) {
          last = String(err)
        }
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`the cluster did not become healthy within ${timeoutMs} ms (${last})`)
    },
    stop,
  }
  try {
    await cluster.waitHealthy()
  } catch (err) {
    await stop()
    throw err
  }
  return cluster
}
