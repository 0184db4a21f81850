import { connect as netConnect, Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { AbstractConnector, Redis, type RedisOptions } from 'ioredis'
import type { ClusterSpec } from './cluster-endpoint.js'
import { replyPrefix } from './redis-failure.js'

/** A node's address. */
export interface NodeAddress {
  host: string
  port: number
}

/** Where a connection made through {@link slotOwnerConnector} is connected now. */
export interface SlotOwnerTracker {
  address: NodeAddress | undefined
}

/** How long one node may take to tell who owns the slot before the next is asked. */
const LOOKUP_TIMEOUT_MS = 1_000

type CommandReply = [Error | null, unknown][]
/** A range of CLUSTER SLOTS: first and last slot, then its primary and replicas [host, port, id]. */
type SlotRange = [number, number, ...[string, number][]]

/**
 * An ioredis connector (the extension point the Sentinel connector uses) that, at every connect
 * and reconnect, asks the cluster which primary owns `key`'s slot and connects to it. A blocking
 * read and the `CLIENT ID` that a `CLIENT UNBLOCK` needs must be on one node's connection, and a
 * subscriber must be on a node of the slot for sharded pub/sub; an ioredis Cluster spreads its
 * commands over a connection per node and picks its subscriber node at random. After a failover
 * the connection drops, ioredis reconnects, and this finds the promoted replica; the connection
 * then emits `ready` as after any reconnect, which its owner already answers (CLIENT ID again,
 * resubscribe and recover).
 */
export function slotOwnerConnector(
  cluster: ClusterSpec,
  key: string,
  tracker: SlotOwnerTracker,
): new (
  options: RedisOptions,
) => AbstractConnector {
  // The nodes learned from the cluster's replies, asked after the seeds (which may all be gone).
  const known: NodeAddress[] = [...cluster.nodes]
  return class SlotOwnerConnector extends AbstractConnector {
    readonly #options: RedisOptions

    constructor(options: RedisOptions) {
      super(options.disconnectTimeout ?? 2_000)
      this.#options = options
    }

    connect(): Promise<Socket> {
      this.connecting = true
      return (async () => {
        // When no node answers, the last owner (or a seed) is connected to anyway: its refusal
        // then takes ioredis's usual way (an error, a retry after retryStrategy's delay), where a
        // rejected connect would end the connection for good.
        let refusal: unknown
        const owner = await findSlotOwner(known, key, cluster.options).catch((err: unknown) => {
          if (replyPrefix(err) === 'NOPERM') refusal = err
          return tracker.address ?? (known[0] as NodeAddress)
        })
        if (!this.connecting) throw new Error('Connection is closed.')
        if (refusal !== undefined) {
          // The user may not ask CLUSTER KEYSLOT or SLOTS: a seed node would answer MOVED, which
          // says nothing of the cause. A stream closed at once with the refusal as its first
          // error makes ioredis emit it, so that connecting fails with REDIS_NOPERM.
          const closed = new Socket()
          closed.destroy()
          this.firstError = refusal as Error
          this.stream = closed
          return closed
        }
        tracker.address = owner
        const tls = this.#options.tls
        const stream =
          tls === undefined
            ? netConnect({ host: owner.host, port: owner.port })
            : tlsConnect({ ...tls, host: owner.host, port: owner.port })
        stream.once('error', (err) => {
          this.firstError = err
        })
        this.stream = stream
        return stream
      })()
    }
  }
}

/**
 * Asks the known nodes in turn (`CLUSTER KEYSLOT`, `CLUSTER SLOTS`) which primary owns `key`'s
 * slot; every node a reply names is remembered in `known`.
 * @throws Error when no node answers
 */
async function findSlotOwner(
  known: NodeAddress[],
  key: string,
  options: ClusterSpec['options'],
): Promise<NodeAddress> {
  let lastError: unknown
  for (const node of [...known]) {
    const c = new Redis({
      ...options,
      host: node.host,
      port: node.port,
      lazyConnect: true,
      connectTimeout: LOOKUP_TIMEOUT_MS,
      commandTimeout: LOOKUP_TIMEOUT_MS,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      enableReadyCheck: false,
      connectionName: 'hy:slot-lookup',
    })
    c.on('error', () => {})
    try {
      await c.connect()
      const [slotReply, slotsReply] = (await c
        .pipeline()
        .call('CLUSTER', 'KEYSLOT', key)
        .call('CLUSTER', 'SLOTS')
        .exec()) as CommandReply
      if (slotReply === undefined || slotsReply === undefined) throw new Error('no reply')
      if (slotReply[0] !== null) throw slotReply[0]
      if (slotsReply[0] !== null) throw slotsReply[0]
      const slot = Number(slotReply[1])
      // An empty host: the node does not know its own address; it is the one asked.
      const addressOf = ([host, port]: [string, number]) => ({
        host: host === '' || host === '?' ? node.host : host,
        port: Number(port),
      })
      let owner: NodeAddress | undefined
      for (const [start, end, ...nodes] of slotsReply[1] as SlotRange[]) {
        for (const n of nodes) {
          const address = addressOf(n)
          if (!known.some((k) => k.host === address.host && k.port === address.port)) known.push(address)
        }
        if (slot >= start && slot <= end && nodes[0] !== undefined) owner = addressOf(nodes[0])
      }
      if (owner !== undefined) return owner
      lastError = new Error(`no node of the cluster serves slot ${slot} (CLUSTERDOWN)`)
    } catch (err) {
      lastError = err
    } finally {
      c.disconnect()
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError))
}
