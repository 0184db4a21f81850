import { poolKeys } from 'hedgeyard'
import {
  type Connection,
  connectReady,
  createConnection,
  type DispatchItem,
  entryFieldList,
  queueKey,
  registerWorkers,
} from 'hedgeyard/internal'
import type { TestClient } from './helpers.js'

/** A plain job as a producer dispatches it (first attempt, no session, one copy), for the scripts' tests. */
export function plainDispatchItem(jobId: string, payload = '1'): DispatchItem {
  return {
    jobId,
    session: '',
    payload,
    timeoutMs: 60_000,
    attempt: 1,
    maxAttempts: 3,
    exclude: '',
    race: '',
    copies: 1,
  }
}

/** A worker's score in `ready` is its jobs held per slot times this (placement/ready.lua). */
export const READY_SCALE = 1_000_000

/**
 * Registers workers that never consume, with the register script, and gives each the load it is
 * asked for by queueing that many entries (so the invariant load == XLEN holds). Dispatch tests
 * use it to set up exact loads and see where the next job lands. Each worker has concurrency 1
 * unless told otherwise; its score in `ready` is its load over its concurrency in millionths, as
 * the scripts write it (placement/ready.lua).
 */
export async function fakeWorkers(
  url: string,
  pool: string,
  loads: Record<string, number>,
  options: {
    capacity?: number
    leaseMs?: number
    concurrency?: Record<string, number>
    host?: Record<string, string>
  } = {},
): Promise<Connection> {
  const conn = createConnection(url, 'command', 'hy:test')
  // Not a bare connect(): on a cluster, the connection to each primary is made on first use, and
  // without an offline queue a command sent meanwhile fails.
  await connectReady(conn, 10_000)
  const k = poolKeys('hy', pool)
  const capacity = options.capacity ?? 100
  for (const [id, load] of Object.entries(loads)) {
    const concurrency = options.concurrency?.[id] ?? 1
    const registration = {
      leaseMs: options.leaseMs ?? 60_000,
      host: options.host?.[id] ?? 'test',
      pid: 1,
      concurrency,
      capacity,
    }
    await registerWorkers(conn, k, registration, [id])
    for (let i = 0; i < load; i++) {
      await conn.xadd(
        queueKey(k, id),
        '*',
        ...entryFieldList({ id: `filler-${i}`, payload: 'null', producer: 'test' }),
      )
    }
    await conn.zincrby(k.load, load, id)
    if (load >= capacity) await conn.zrem(k.ready, id)
    else await conn.zadd(k.ready, Math.floor((load * READY_SCALE) / concurrency), id)
  }
  return conn
}

/** The stream lengths of the given workers. */
export async function queueLengths(
  c: TestClient,
  pool: string,
  ids: string[],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  const k = poolKeys('hy', pool)
  for (const id of ids) out[id] = await c.xlen(queueKey(k, id))
  return out
}

/** Marks a fake worker's lease as expired, as if its process had died. */
export async function expireLease(c: TestClient, pool: string, id: string): Promise<void> {
  await c.zadd(poolKeys('hy', pool).alive, 1, id)
}
