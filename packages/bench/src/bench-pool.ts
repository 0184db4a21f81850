import { type PoolKeys, poolKeys } from 'hedgeyard'
import { queueKey, registerWorkers } from 'hedgeyard/internal'
import type { BenchConnection } from './library-scripts.js'
import { seededRandom } from './stats.js'

/** A pool of registered workers that never consume: dispatch sees exactly what real workers show it. */
export interface BenchPool {
  keys: PoolKeys
  workerIds: string[]
  /** Sum of the loads the workers were registered with. */
  initialLoad: number
}

/** Defaults of {@link createBenchPool}. */
export const BENCH_POOL_DEFAULTS = Object.freeze({
  prefix: 'hy',
  concurrency: 8,
  /** Far above anything a run dispatches: no worker ever leaves `ready` for being full. */
  capacity: 1_000_000,
  /** One hour: no lease expires during a run, so no candidate is dropped for being dead. */
  leaseMs: 3_600_000,
  /** Initial loads are drawn from 0..maxInitialLoad: idle, busy and queued workers, with ties. */
  maxInitialLoad: 11,
  /** Workers per register call. */
  registerChunk: 100,
})

/**
 * Registers `size` workers in pool `pool` with the library's register script. Each worker first
 * gets a varied number of entries in its stream, which register turns into its load (load ==
 * XLEN, the protocol's invariant), so the `ready` ZSET holds realistic scores with ties.
 */
export async function createBenchPool(
  conn: BenchConnection,
  pool: string,
  size: number,
  seed: number,
): Promise<BenchPool> {
  const d = BENCH_POOL_DEFAULTS
  const keys = poolKeys(d.prefix, pool)
  const random = seededRandom(seed)
  const workerIds = Array.from({ length: size }, (_, i) => `bench-host-4242-${i + 1}`)
  let initialLoad = 0
  const fill = conn.pipeline()
  for (const id of workerIds) {
    const load = Math.floor(random() * (d.maxInitialLoad + 1))
    initialLoad += load
    for (let i = 0; i < load; i++) {
      fill.xadd(queueKey(keys, id), '*', ...jobFields(`filler-${i}`, 0))
    }
  }
  await execOrThrow(fill, 'filling the worker streams')
  for (let start = 0; start < size; start += d.registerChunk) {
    const registration = {
      leaseMs: d.leaseMs,
      host: 'bench-host',
      pid: 4242,
      concurrency: d.concurrency,
      capacity: d.capacity,
    }
    await registerWorkers(conn, keys, registration, workerIds.slice(start, start + d.registerChunk))
  }
  return { keys, workerIds, initialLoad }
}

/** A realistic job payload: a small JSON request, as a GenAI-style call would carry. */
export function jobPayload(n: number): string {
  return JSON.stringify({ model: 'small', prompt: `summarise document ${n}`, maxTokens: 256 })
}

/** The fields of a plain job's stream entry (the dispatch script writes the same ones). */
function jobFields(jobId: string, now: number): string[] {
  return ['job', `${jobId} bench-producer ${now + 30_000} ${now}`, 'payload', jobPayload(0)]
}

/**
 * Checks the invariant a user would notice if dispatch broke it: every worker's load equals the
 * length of its stream, and the loads add up to what was registered plus what was dispatched.
 * Returns the problems found, empty when all is well.
 */
export async function checkPool(
  conn: BenchConnection,
  pool: BenchPool,
  dispatched: number,
): Promise<string[]> {
  const read = conn.pipeline()
  for (const id of pool.workerIds) {
    read.zscore(pool.keys.load, id)
    read.xlen(queueKey(pool.keys, id))
  }
  const replies = await execOrThrow(read, 'reading loads')
  const problems: string[] = []
  let total = 0
  pool.workerIds.forEach((id, i) => {
    const load = Number(replies[i * 2])
    const length = Number(replies[i * 2 + 1])
    total += load
    if (load !== length && problems.length < 5) problems.push(`worker ${id}: load ${load} but XLEN ${length}`)
  })
  const expected = pool.initialLoad + dispatched
  if (total !== expected) problems.push(`loads add up to ${total}, expected ${expected}`)
  return problems
}

async function execOrThrow(
  pipeline: ReturnType<BenchConnection['pipeline']>,
  what: string,
): Promise<unknown[]> {
  const results = (await pipeline.exec()) ?? []
  const failed = results.find(([err]) => err)
  if (failed?.[0]) throw new Error(`${what} failed: ${failed[0].message}`, { cause: failed[0] })
  return results.map(([, value]) => value)
}
