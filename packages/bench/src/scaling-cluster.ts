/**
 * A Redis Cluster of N primaries and no replicas for the scaling benchmark (docs/scaling.md), from
 * the shared launcher's `redis-server --cluster-enabled yes` like the test harness's cluster
 * (packages/testing/src/redis-cluster.ts). It is made by hand, `CLUSTER ADDSLOTSRANGE` and
 * `CLUSTER MEET`, because `redis-cli --cluster create` refuses fewer than 3 primaries, and the
 * harness is TypeScript source that only vitest runs.
 */
import { type RedisServer, startRedisServer } from '@hedgeyard/redis-server'
import { Redis } from 'ioredis'

const SLOTS = 16_384

/** One primary: its server, a connection of the benchmark's and the slots it owns. */
export interface BenchNode {
  server: RedisServer
  conn: Redis
  address: string
  slots: { from: number; to: number }
  busPort: number
}

/** The running cluster: its nodes, its URL and `stop`. */
export interface BenchCluster {
  nodes: BenchNode[]
  /** `redis+cluster://127.0.0.1:<p1>,...`, the library's cluster URL. */
  url: string
  /** The node that owns `key`'s slot (`CLUSTER KEYSLOT`), as `CLUSTER NODES` says, and that slot. */
  ownerOf(key: string): Promise<{ node: BenchNode; slot: number }>
  stop(): Promise<void>
}

/** Starts `primaries` nodes, each with an even range of the slots, and waits for `cluster_state:ok`. */
export async function startBenchCluster(primaries: number): Promise<BenchCluster> {
  const nodes: BenchNode[] = []
  const stop = async () => {
    for (const n of nodes) n.conn.disconnect()
    await Promise.all(nodes.map((n) => n.server.stop()))
  }
  try {
    for (let i = 0; i < primaries; i++) {
      // The launcher chooses the bus port apart (port + 10000 may be taken or past 65535).
      const server = await startRedisServer({
        // A node that meets no other (a cluster of one) would not know its own IP without the announce.
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-announce-ip',
          '127.0.0.1',
        ],
      })
      const conn = new Redis({ host: '127.0.0.1', port: server.port, maxRetriesPerRequest: 1 })
      const slots = {
        from: Math.floor((i * SLOTS) / primaries),
        to: Math.floor(((i + 1) * SLOTS) / primaries) - 1,
      }
      nodes.push({
        server,
        conn,
        address: `127.0.0.1:${server.port}`,
        slots,
        busPort: server.busPort as number,
      })
      await conn.call('CLUSTER', 'ADDSLOTSRANGE', String(slots.from), String(slots.to))
    }
    const first = nodes[0] as BenchNode
    for (const n of nodes.slice(1))
      await first.conn.call('CLUSTER', 'MEET', '127.0.0.1', String(n.server.port), String(n.busPort))
    const deadline = Date.now() + 30_000
    for (;;) {
      const infos = await Promise.all(nodes.map((n) => n.conn.call('CLUSTER', 'INFO')))
      const isOk = infos.every(
        (s) =>
          String(s).includes('cluster_state:ok') && String(s).includes(`cluster_known_nodes:${primaries}`),
      )
      if (isOk) break
      if (Date.now() > deadline) throw new Error(`cluster of ${primaries} did not become healthy`)
      await new Promise((r) => setTimeout(r, 100))
    }
  } catch (err) {
    await stop()
    throw err
  }
  return {
    nodes,
    url: `redis+cluster://${nodes.map((n) => n.address).join(',')}`,
    async ownerOf(key) {
      const conn = (nodes[0] as BenchNode).conn
      const slot = Number(await conn.call('CLUSTER', 'KEYSLOT', key))
      for (const line of String(await conn.call('CLUSTER', 'NODES'))
        .trim()
        .split('\n')) {
        const [, address = '', , , , , , , ...ranges] = line.split(' ')
        const isOwner = ranges.some((r) => {
          const [lo = -1, hi = lo] = r.split('-').map(Number)
          return slot >= lo && slot <= hi
        })
        // A node that never met another names itself without its IP (`:7000@17000`).
        const port = Number(address.split('@')[0]?.split(':')[1])
        const node = nodes.find((n) => n.server.port === port)
        if (isOwner && node !== undefined) return { node, slot }
      }
      throw new Error(`no node owns slot ${slot}`)
    },
    stop,
  }
}
