import { Cluster, Redis, type RedisOptions } from 'ioredis'
import { HedgeyardError } from '../protocol/errors.js'
import type { ClusterSpec } from './cluster-endpoint.js'
import type { Connection, ConnectionRole } from './connection.js'
import { replyPrefix } from './redis-failure.js'
import { type SlotOwnerTracker, slotOwnerConnector } from './slot-owner-connector.js'

/**
 * The connections to a Redis Cluster (docs/cluster.md), for the factory of connection.ts, which
 * alone calls this module: each role's connection, and what differs on a cluster when one
 * subscribes, unblocks a read or waits for a connection to be ready.
 */

/** Where each slot-owner connection is connected, for a CLIENT UNBLOCK sent to the same node. */
const slotOwners = new WeakMap<object, SlotOwnerTracker>()
/**
 * The channels of each cluster subscriber. A node that loses a slot drops its sharded
 * subscriptions (`sunsubscribe`), and ioredis then forgets them: they are made again here after
 * the reconnect that follows.
 */
const shardChannels = new WeakMap<object, Set<string>>()
/** What a cluster connection is connected to, for messages. */
export const clusterDisplays = new WeakMap<object, string>()

/**
 * A connection to a cluster. `command` is an ioredis Cluster of its own (scripts go to the node
 * of their keys' slot, following MOVED and ASK), built with the same settings as on one server:
 * no offline queue, and a command whose node's connection dropped is failed, never resent
 * (`retryDelayOnFailover: 0`). `blocking` and `subscriber` are single connections to the primary
 * that owns `slotKey`'s slot, found again at every reconnect (slot-owner-connector.ts), so that a
 * blocking read, its CLIENT ID and the CLIENT UNBLOCK that ends it meet on one node.
 */
export function clusterConnection(
  cluster: ClusterSpec,
  role: ConnectionRole,
  roleOptions: RedisOptions,
  name: string,
  slotKey: string | undefined,
): Connection {
  if (role === 'command') {
    const conn = new Cluster(cluster.nodes, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: false,
      retryDelayOnFailover: 0,
      clusterRetryStrategy: roleOptions.retryStrategy ?? null,
      redisOptions: { ...cluster.options, protocol: 2, connectionName: name, maxRetriesPerRequest: 0 },
    })
    clusterDisplays.set(conn, cluster.display)
    // A node learned later (a promoted replica, a new primary) is connected at once, for the same
    // reason as in primariesReady: the first commands sent to it would fail otherwise.
    conn.on('+node', (node: Redis) => {
      if (node.status === 'wait' && !node.options.readOnly) node.connect().catch(() => {})
    })
    return conn as unknown as Connection
  }
  if (slotKey === undefined) throw new Error(`a ${role} connection to a cluster needs the key of its slot`)
  const tracker: SlotOwnerTracker = { address: undefined }
  const conn = new Redis({
    ...roleOptions,
    ...cluster.options,
    protocol: 2,
    lazyConnect: true,
    connectionName: name,
    Connector: slotOwnerConnector(cluster, slotKey, tracker),
  } as never) as unknown as Connection
  slotOwners.set(conn, tracker)
  clusterDisplays.set(conn, cluster.display)
  if (role === 'subscriber') {
    const channels = new Set<string>()
    shardChannels.set(conn, channels)
    conn.on('ready', () => {
      if (channels.size > 0) conn.ssubscribe(...channels).catch(() => {})
    })
  }
  // The slot went to another node (a migration, a manual failover): reconnecting finds the new
  // owner. A read answered MOVED fails, and its loop reads again; sharded subscriptions the node
  // dropped are made again on `ready`.
  conn.on('moved', () => conn.disconnect(true))
  const send = conn.sendCommand.bind(conn)
  conn.sendCommand = ((command, stream) => {
    const reply = send(command, stream) as Promise<unknown>
    reply.catch((err: unknown) => {
      if (replyPrefix(err) === 'MOVED') conn.disconnect(true)
    })
    return reply
  }) as typeof conn.sendCommand
  return conn
}

/** Whether `conn` is a cluster's subscriber, whose channels are sharded (SSUBSCRIBE). */
export function isShardedSubscriber(conn: Connection): boolean {
  return shardChannels.has(conn)
}

/** SSUBSCRIBE on a cluster's subscriber; its channels are made again after a reconnect. */
export function subscribeSharded(conn: Connection, channels: readonly string[]): Promise<unknown> {
  const kept = shardChannels.get(conn) as Set<string>
  for (const channel of channels) kept.add(channel)
  return conn.ssubscribe(...channels)
}

/**
 * `CLIENT UNBLOCK clientId` sent on `cmd` to the node a cluster's blocking connection is connected
 * to; undefined when `blocking` is a connection of one server.
 */
export async function unblockOnItsNode(
  cmd: Connection,
  blocking: Connection,
  clientId: number,
): Promise<boolean | undefined> {
  const tracker = slotOwners.get(blocking)
  if (tracker === undefined) return undefined
  const at = tracker.address
  if (at === undefined) return false
  const node = (cmd as unknown as Cluster)
    .nodes('all')
    .find((n: Redis) => n.options.host === at.host && n.options.port === at.port)
  return node === undefined ? false : (await node.client('UNBLOCK', clientId)) === 1
}

/**
 * Resolves once the cluster's connection to each primary is ready, or has failed (a primary that
 * is down, whose slots the cluster has not handed to a replica yet: calls meant for it fail at
 * once, the others work). Without an offline queue, a cluster client fails a command meant for a
 * node whose connection is still being made; its connections are made when first used, so the
 * first calls after `ready` would fail.
 * @throws HedgeyardError REDIS_UNAVAILABLE when one is still connecting after `timeoutMs`
 */
export async function primariesReady(conn: Cluster, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new HedgeyardError(
            'REDIS_UNAVAILABLE',
            `the primaries of ${clusterDisplays.get(conn) ?? 'the cluster'} did not become ready within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    )
  })
  try {
    await Promise.race([Promise.all(conn.nodes('master').map((node) => nodeReady(node))), late])
  } finally {
    clearTimeout(timer)
  }
}

/** Connects a node of a cluster client if it waits to be used; resolves once it is ready or has failed. */
function nodeReady(node: Redis): Promise<void> {
  if (node.status === 'ready' || node.status === 'end') return Promise.resolve()
  if (node.status === 'wait') node.connect().catch(() => {})
  return new Promise((resolve) => {
    node.once('ready', () => resolve())
    node.once('end', () => resolve())
  })
}
