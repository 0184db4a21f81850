import type { Redis } from 'ioredis'
import { CONSUMER_GROUP, type PoolKeys, queueKey, workerKey } from '../protocol/keys.js'

/** One worker of a pool, as any host reads it from Redis. */
export interface WorkerMetrics {
  workerId: string
  host: string
  pid: number
  /** Its lease has not expired. */
  alive: boolean
  /**
   * 'active' takes jobs; 'cooling' takes none until `coolingMs` has passed (its upstream answered
   * 429); 'draining' finishes what it holds and leaves.
   */
  state: string
  /** Ms of cooldown left (0 when not cooling). */
  coolingMs: number
  /** Its breaker: 'closed', 'open' (out of dispatch for `breakerMs`) or 'half-open' (one probe job). */
  breaker: 'closed' | 'open' | 'half-open'
  /** Ms until an open breaker half-opens (0 otherwise). */
  breakerMs: number
  /** Retryable failures or timeouts in a row, counted by the breaker. */
  consecutiveFailures: number
  /** Jobs it has read and is running. */
  inflight: number
  /** Jobs waiting in its stream, not read yet. */
  queueLen: number
  /** Concurrency plus queue capacity: the most jobs it holds at once. */
  capacity: number
  concurrency: number
  /** Jobs whose handler finished, successfully or not. */
  processed: number
  /** Jobs whose handler failed. */
  errors: number
}

/** Reads the metrics of every worker registered in a pool, ordered by worker id. */
export async function readWorkerMetrics(conn: Redis, keys: PoolKeys): Promise<WorkerMetrics[]> {
  const [loads, leases, time] = await Promise.all([
    conn.zrange(keys.load, '0', '-1', 'WITHSCORES'),
    conn.zrange(keys.alive, '0', '-1', 'WITHSCORES'),
    conn.time(),
  ])
  const nowMs = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000)
  const leaseOf = new Map<string, number>()
  for (let i = 0; i < leases.length; i += 2) leaseOf.set(leases[i] as string, Number(leases[i + 1]))
  const ids: string[] = []
  const loadOf = new Map<string, number>()
  for (let i = 0; i < loads.length; i += 2) {
    ids.push(loads[i] as string)
    loadOf.set(loads[i] as string, Number(loads[i + 1]))
  }
  ids.sort()
  const pipeline = conn.pipeline()
  for (const id of ids) {
    pipeline.hgetall(workerKey(keys, id))
    pipeline.xpending(queueKey(keys, id), CONSUMER_GROUP)
  }
  const replies = ids.length > 0 ? ((await pipeline.exec()) ?? []) : []
  return ids.map((workerId, i) => {
    const info = (replies[i * 2]?.[1] ?? {}) as Record<string, string>
    const pending = replies[i * 2 + 1]?.[1] as [number, ...unknown[]] | undefined
    const inflight = Number(pending?.[0] ?? 0)
    const load = loadOf.get(workerId) ?? 0
    const coolingMs = Math.max(0, Number(info.cooling_until ?? 0) - nowMs) || 0
    const state = info.state ?? 'unknown'
    const breaker = info.breaker === 'open' ? 'open' : info.breaker === 'half' ? 'half-open' : 'closed'
    return {
      workerId,
      host: info.host ?? '',
      pid: Number(info.pid ?? 0),
      alive: (leaseOf.get(workerId) ?? 0) >= nowMs,
      state: state === 'active' && coolingMs > 0 ? 'cooling' : state,
      coolingMs,
      breaker,
      breakerMs: breaker === 'open' ? Math.max(0, Number(info.breaker_until ?? 0) - nowMs) || 0 : 0,
      consecutiveFailures: Number(info.fails ?? 0) || 0,
      inflight,
      queueLen: Math.max(0, load - inflight),
      capacity: Number(info.capacity ?? 0),
      concurrency: Number(info.concurrency ?? 0),
      processed: Number(info.processed ?? 0),
      errors: Number(info.errors ?? 0),
    }
  })
}
