/**
 * The Redis key layout of a pool. Every key and channel carries the `{pool}` hash tag, so a pool
 * lives on one cluster slot and every script is cluster-safe. `docs/redis-keys.md` lists them.
 */

/** The keys of one pool, as passed to scripts and read by tools. */
export interface PoolKeys {
  /** `hy:{P}:` — scripts derive per-worker and per-job keys from it. */
  readonly base: string
  /** ZSET workerId -> load (queued + running). */
  readonly load: string
  /** ZSET workerId -> load, holding only active workers below capacity: the dispatch candidates. */
  readonly ready: string
  /** ZSET workerId -> lease deadline in ms of Redis time. */
  readonly alive: string
  /** STREAM of dead letters. */
  readonly dead: string
  /** ZSET producerId -> time of its last counters report. */
  readonly producers: string
}

/** Builds the keys of pool `pool` under `prefix`. */
export function poolKeys(prefix: string, pool: string): PoolKeys {
  const base = `${prefix}:{${pool}}:`
  return {
    base,
    load: `${base}load`,
    ready: `${base}ready`,
    alive: `${base}alive`,
    dead: `${base}dead`,
    producers: `${base}producers`,
  }
}

/** HASH of a worker: host, pid, concurrency, capacity, state, processed, errors, started. */
export function workerKey(keys: PoolKeys, workerId: string): string {
  return `${keys.base}w:${workerId}`
}

/** STREAM of a worker's jobs, consumer group {@link CONSUMER_GROUP}. */
export function queueKey(keys: PoolKeys, workerId: string): string {
  return `${keys.base}q:${workerId}`
}

/** STRING: the worker a session is bound to, with a sliding PX TTL. */
export function affinityKey(keys: PoolKeys, session: string): string {
  return `${keys.base}aff:${session}`
}

/** STRING: a job's result envelope, PX TTL; `SET NX` elects the winner. */
export function resultKey(keys: PoolKeys, jobId: string): string {
  return `${keys.base}res:${jobId}`
}

/** Pub/sub channel on which a producer receives its results: `<jobId> <envelope>`. */
export function resultChannel(keys: PoolKeys, producerId: string): string {
  return `${keys.base}results:${producerId}`
}

/** The consumer group every worker stream has. */
export const CONSUMER_GROUP = 'hy'

/** Pub/sub channel on which a worker hears that a running copy lost its race: the entry id. */
export function cancelChannel(keys: PoolKeys, workerId: string): string {
  return `${keys.base}cancel:${workerId}`
}

/** HASH of a producer's counters (submits, hedges, ...), expiring when it stops reporting. */
export function producerKey(keys: PoolKeys, producerId: string): string {
  return `${keys.base}p:${producerId}`
}
