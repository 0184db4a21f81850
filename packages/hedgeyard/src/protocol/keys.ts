import {
  CHANNEL_CANCEL,
  CHANNEL_RESULTS,
  KEY_AFFINITY,
  KEY_CLAIM,
  KEY_CLASS_LIMITS,
  KEY_COPIES,
  KEY_INFLIGHT,
  KEY_LIMITS,
  KEY_OUT,
  KEY_PRODUCER,
  KEY_QUEUE,
  KEY_QUOTA,
  KEY_RESULT,
  KEY_RESUMED,
  KEY_SENT,
  KEY_TENANT_QUOTA,
  KEY_WORKER,
} from './wire.js'

/**
 * The Redis key layout of a pool: the only place key names are built. Every key and channel
 * carries the `{pool}` hash tag, so a pool lives on one cluster slot. The Lua scripts build the
 * keys they learn inside themselves (a chosen worker's stream, a job's result) from the same
 * parts (`wire.ts`, copied into `lib/wire.lua`). `docs/redis-keys.md` lists them.
 */

export { CONSUMER_GROUP } from './wire.js'

/** The keys of one pool, as passed to scripts and read by tools. */
export interface PoolKeys {
  /** `hy:{P}:`: scripts build per-worker and per-job keys from it. */
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
  /** HASH of the pool's quotas (rate, cost budget), read by every dispatch. */
  readonly limits: string
  /** HASH of the quotas' state: the theoretical arrival time (ms) of each limiter. */
  readonly quota: string
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
    limits: `${base}${KEY_LIMITS}`,
    quota: `${base}${KEY_QUOTA}`,
  }
}

/** HASH of the limits each tenant of a class gets: rate, cost budget, concurrency. */
export function classLimitsKey(keys: PoolKeys, limitClass: string): string {
  return `${keys.base}${KEY_CLASS_LIMITS}${limitClass}`
}

/** HASH of one tenant's quota state under its class's limits (each limiter's TAT, ms), PX TTL. */
export function tenantQuotaKey(keys: PoolKeys, limitClass: string, limitKey: string): string {
  return `${keys.base}${KEY_TENANT_QUOTA}${limitClass}:${limitKey}`
}

/** ZSET jobId -> deadline (ms, Redis time) of a tenant's jobs queued or running, for its cap. */
export function inflightKey(keys: PoolKeys, limitKey: string): string {
  return `${keys.base}${KEY_INFLIGHT}${limitKey}`
}

/** HASH of a worker: host, pid, concurrency, capacity, state, processed, errors, started. */
export function workerKey(keys: PoolKeys, workerId: string): string {
  return `${keys.base}${KEY_WORKER}${workerId}`
}

/** STREAM of a worker's jobs, consumer group {@link CONSUMER_GROUP}. */
export function queueKey(keys: PoolKeys, workerId: string): string {
  return `${keys.base}${KEY_QUEUE}${workerId}`
}

/** STRING: the worker a session is bound to, with a sliding PX TTL. */
export function affinityKey(keys: PoolKeys, session: string): string {
  return `${keys.base}${KEY_AFFINITY}${session}`
}

/** STRING: a job's result envelope, PX TTL; `SET NX` elects the winner. */
export function resultKey(keys: PoolKeys, jobId: string): string {
  return `${keys.base}${KEY_RESULT}${jobId}`
}

/** STRING: the envelope of a failed copy of a racing job (hedge, retry, tied), PX TTL. */
export function copyResultKey(keys: PoolKeys, jobId: string, copy: number): string {
  return `${keys.base}${KEY_RESULT}${jobId}:${copy}`
}

/** HASH workerId -> entry id of each queued copy of a racing job. */
export function copiesKey(keys: PoolKeys, jobId: string): string {
  return `${keys.base}${KEY_COPIES}${jobId}`
}

/** STRING: the worker whose copy of a tied pair started first, PX TTL. */
export function claimKey(keys: PoolKeys, jobId: string, copy: number): string {
  return `${keys.base}${KEY_CLAIM}${jobId}:${copy}`
}

/**
 * STREAM of a streamed job's output: one entry per write of chunks, its id `0-<seq of its last
 * chunk>` (field `d`, one chunk's JSON, or `b` and `n`, the JSON array of several; the first entry
 * also `w` and `e`, the worker and entry that own the stream, `p` its producer and, for a job with no
 * deadline, `k` how long the stream is kept), then one last entry with field `end`,
 * the job's result envelope. Capped by the worker's maxChunks; PX TTL like the result.
 */
export function outKey(keys: PoolKeys, jobId: string): string {
  return `${keys.base}${KEY_OUT}${jobId}`
}

/**
 * STRING: how many times a job's stream has been resumed (`Dispatcher.resume`), so that a gateway
 * whose client went away can tell whether it came back elsewhere before it cancels the job. PX TTL.
 */
export function resumedKey(keys: PoolKeys, jobId: string): string {
  return `${keys.base}${KEY_RESUMED}${jobId}`
}

/** HASH of a producer's counters (submits, hedges, ...), expiring when it stops reporting. */
export function producerKey(keys: PoolKeys, producerId: string): string {
  return `${keys.base}${KEY_PRODUCER}${producerId}`
}

/**
 * HASH of a producer's dispatch receipts: field `<call number mod RECEIPT_SLOTS>` -> `<call number>
 * <the call's reply as JSON>`, written by each dispatch call, PX TTL. A producer whose connection
 * dropped before a reply came reads it to learn whether the call ran, rather than send it again.
 */
export function sentKey(keys: PoolKeys, producerId: string): string {
  return `${keys.base}${KEY_SENT}${producerId}`
}

/** Pub/sub channel on which a producer receives its results: lines `<jobId> <envelope>`. */
export function resultChannel(keys: PoolKeys, producerId: string): string {
  return `${keys.base}${CHANNEL_RESULTS}${producerId}`
}

/** Pub/sub channel on which a worker hears that a running copy lost its race: the entry id. */
export function cancelChannel(keys: PoolKeys, workerId: string): string {
  return `${keys.base}${CHANNEL_CANCEL}${workerId}`
}

/**
 * `hy:{P}:cells:join`: STRING, held (SET NX PX) by a process while it joins its workers to a cell
 * of a pool spread over cells; it lives in cell 0's keys (`P` is that cell's pool), so every cell
 * user's ACL already covers it.
 */
export function cellJoinKey(keys: PoolKeys): string {
  return `${keys.base}cells:join`
}
