/**
 * Redis memory around one streaming run (suite f): a baseline once the warm-up's data has
 * expired, the peak while the streams run (sampled), and what is left once the TTL of the run's
 * data has passed, with the processes still running.
 */
import type { Redis } from 'ioredis'
import type { RunHooks } from './measure-run.js'

/** The memory of one run, in bytes of `used_memory` (`INFO memory`). */
export interface MemoryFigures {
  /** After the warm-up and its TTL, before the measured phase. */
  baselineBytes: number
  /** The highest sample during the measured phase. */
  peakBytes: number
  /** Once every stream has ended. */
  afterRunBytes: number
  /** Once the result TTL has passed after the run. */
  afterTtlBytes: number
  /** Keys made since the baseline that are still there after the TTL. */
  keysLeft: number
  /** Those of them without a TTL (at most 10 names): they would stay for good. */
  keysLeftWithoutTtl: string[]
}

/**
 * The run's growth left after the TTL may be at most this share of its growth at the peak:
 * `used_memory` of an idle Redis moves by tens to a few hundred KiB here (client buffers, and
 * Redis's own allocations that belong to no key), so "back to the baseline" needs a margin.
 */
export const MEMORY_RETURN_SHARE = 0.1

const MEMORY_DEFAULTS = Object.freeze({
  /** How often `used_memory` is sampled during the measured phase. */
  sampleMs: 20,
  /** Waited after the TTL, for Redis's expiry to catch up. */
  ttlMarginMs: 500,
})

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

async function usedMemory(conn: Redis): Promise<number> {
  const info = await conn.info('memory')
  return Number(/(?:^|\r\n)used_memory:(\d+)/.exec(info)?.[1] ?? Number.NaN)
}

/** Every key, read with SCAN, which also deletes the expired keys it meets, as expiry would in time. */
async function scanKeys(conn: Redis): Promise<Set<string>> {
  const keys = new Set<string>()
  let cursor = '0'
  do {
    const [next, found] = await conn.scan(cursor, 'COUNT', 1_000)
    cursor = next
    for (const k of found) keys.add(k)
  } while (cursor !== '0')
  return keys
}

/** Waits out the TTL, lets SCAN expire what is due, and reads memory once freed pages are returned. */
async function settledMemory(conn: Redis, ttlMs: number): Promise<{ bytes: number; keys: Set<string> }> {
  await sleep(ttlMs + MEMORY_DEFAULTS.ttlMarginMs)
  const keys = await scanKeys(conn)
  await conn.call('MEMORY', 'PURGE').catch(() => {})
  return { bytes: await usedMemory(conn), keys }
}

/** The hooks that measure a run's memory on `conn`, and its figures once the run is over. */
export function watchMemory(conn: Redis, ttlMs: number): { hooks: RunHooks; figures(): MemoryFigures } {
  let baseline = { bytes: Number.NaN, keys: new Set<string>() }
  let peakBytes = 0
  let afterRunBytes = Number.NaN
  let afterTtlBytes = Number.NaN
  let keysLeft = 0
  const keysLeftWithoutTtl: string[] = []
  const hooks: RunHooks = {
    async afterWarmup() {
      baseline = await settledMemory(conn, ttlMs)
    },
    whileMeasuring() {
      let sampling: Promise<void> = Promise.resolve()
      const sample = async () => {
        peakBytes = Math.max(peakBytes, await usedMemory(conn))
      }
      const timer = setInterval(() => {
        sampling = sampling.then(sample, sample)
      }, MEMORY_DEFAULTS.sampleMs)
      return async () => {
        clearInterval(timer)
        await sampling.catch(() => {})
        afterRunBytes = await usedMemory(conn)
        peakBytes = Math.max(peakBytes, afterRunBytes)
      }
    },
    async afterRun() {
      const after = await settledMemory(conn, ttlMs)
      afterTtlBytes = after.bytes
      for (const key of after.keys) {
        if (baseline.keys.has(key)) continue
        keysLeft++
        if (keysLeftWithoutTtl.length < 10 && (await conn.pttl(key)) === -1) keysLeftWithoutTtl.push(key)
      }
    },
  }
  return {
    hooks,
    figures: () => ({
      baselineBytes: baseline.bytes,
      peakBytes,
      afterRunBytes,
      afterTtlBytes,
      keysLeft,
      keysLeftWithoutTtl,
    }),
  }
}
