/**
 * Suite d, dispatch cost against pool size: what one dispatch costs Redis with 8, 100 and 1,000
 * registered workers, on a redis-server of its own. The bar is cost(1000) <= 1.5 x cost(8): no
 * O(N) work per dispatch. Beside the library's script it measures a floor (dispatch-floor.ts): the
 * least a placement of 64 jobs writes. `npm run bench` runs it as suite d; dispatch-cost.ts runs
 * it alone.
 */
import { startRedisServer } from '@hedgeyard/redis-server'
import { type Measurement, measureRound, type RoundSettings, type Variant } from './dispatch-round.js'
import { connectWithScripts, DISPATCH_SHA1 } from './library-scripts.js'
import type { BenchContext } from './measure-run.js'
import { type Spread, spread } from './stats.js'

export const DISPATCH_SIZES = [8, 100, 1000] as const
export const DISPATCH_LIMIT_RATIO = 1.5

const VARIANTS: readonly Variant[] = [
  { name: 'batch 1', batch: 1, hasSessions: false },
  { name: 'batch 64', batch: 64, hasSessions: false },
  { name: 'batch 1, sessions', batch: 1, hasSessions: true },
  { name: 'batch 64, sessions', batch: 64, hasSessions: true },
  // Not the library's script: the least a placement of 64 jobs must do (dispatch-floor.ts).
  { name: 'batch 64, floor', batch: 64, hasSessions: false, isFloor: true },
]

const DISPATCH_COST_DEFAULTS = Object.freeze({
  jobs: 20_000,
  repetitions: 5,
  warmupJobs: 1_000,
  /** Jobs per measurement of the first, discarded pass over every variant and size. */
  firstPassJobs: 2_000,
  blockJobs: 2_000,
  inFlight: 8,
  sessions: 2_000,
  affinityTtlMs: 600_000,
  quietLoad: 0.15,
  quietWaitMs: 60_000,
  /** A round during which other processes kept more CPUs busy than this is taken again... */
  maxOtherLoad: 0.25,
  /** ...up to this many times in all; the last one is kept, and shows its load. */
  attempts: 3,
})
const QUICK = Object.freeze({ jobs: 300, blockJobs: 100, repetitions: 1, warmupJobs: 64, firstPassJobs: 0 })

/** What the tables show of one variant. */
export interface DispatchVariantRow {
  variant: string
  /** The floor (dispatch-floor.ts), not the library's script: not judged, compared with. */
  isFloor: boolean
  bySize: {
    size: number
    redisCpuUsPerJob: Spread
    scriptUsPerJob: Spread
    jobsPerSecond: Spread
    affinityHitRate: number
  }[]
  /** cost(1000) / cost(8): ratio of medians, and the range of the per-round ratios. */
  redisCpuRatio: { ofMedians: number; perRound: Spread }
  scriptRatio: { ofMedians: number; perRound: Spread }
  /** Median usec per job of each command (INFO commandstats), by pool size. */
  commandUsPerJob: Record<string, Record<number, number>>
}

export interface DispatchCostResult {
  settings: RoundSettings & { repetitions: number; zsetMaxListpackEntries: number }
  dispatchScriptSha1: string
  variants: DispatchVariantRow[]
  measurements: Measurement[]
  /** Script errors and broken pool invariants: empty when all is well. */
  problems: string[]
}

/** The variants of the library's script (the floor aside). */
export function libraryDispatchVariants(d: DispatchCostResult): DispatchVariantRow[] {
  return d.variants.filter((v) => !v.isFloor)
}

/** The library's variant whose cost grows most from 8 to 1,000 workers: the one the target judges. */
export function worstDispatchVariant(d: DispatchCostResult): DispatchVariantRow {
  return libraryDispatchVariants(d).reduce((w, v) =>
    v.redisCpuRatio.ofMedians > w.redisCpuRatio.ofMedians ? v : w,
  )
}

/** The floor's row, when the run measured it. */
export function dispatchFloorVariant(d: DispatchCostResult): DispatchVariantRow | undefined {
  return d.variants.find((v) => v.isFloor)
}

/** How to run the rounds: the defaults (or the quick ones) with these changes. */
export interface DispatchCostOptions {
  isQuick: boolean
  repetitions?: number
  jobs?: number
  quietWaitMs?: number
  /** Redis's `zset-max-listpack-entries` (ZSETs up to that size are scanned member by member). */
  listpackEntries?: number
}

/**
 * Starts a redis-server of its own, so it never disturbs (nor is disturbed by) another Redis, and
 * runs every variant's rounds, interleaved: round 1 of each, then round 2, and so on, after a
 * discarded first pass that warms everything up.
 */
export async function measureDispatchCost(o: DispatchCostOptions, log: (line: string) => void) {
  const base = { ...DISPATCH_COST_DEFAULTS, ...(o.isQuick ? { ...QUICK, quietWaitMs: 0, attempts: 1 } : {}) }
  const settings = { ...base, jobs: o.jobs ?? base.jobs, quietWaitMs: o.quietWaitMs ?? base.quietWaitMs }
  const repetitions = o.repetitions ?? base.repetitions
  const server = await startRedisServer()
  const conn = await connectWithScripts(server.url)
  const all: Measurement[] = []
  try {
    if (o.listpackEntries !== undefined)
      await conn.config('SET', 'zset-max-listpack-entries', o.listpackEntries)
    // What the server uses, set here or not: pools up to this many workers are stored as listpacks.
    const [, listpack] = (await conn.config('GET', 'zset-max-listpack-entries')) as [string, string]
    log(
      `dispatch cost: script ${DISPATCH_SHA1.slice(0, 12)}, Redis ${server.version}, listpacks up to ${listpack}`,
    )
    if (base.firstPassJobs > 0) {
      const firstPass = { ...settings, jobs: base.firstPassJobs, quietWaitMs: 0 }
      for (const v of VARIANTS) await measureRound(conn, v, DISPATCH_SIZES, 0, firstPass)
    }
    for (let rep = 1; rep <= repetitions; rep++) {
      for (const v of VARIANTS) {
        let round = await measureRound(conn, v, DISPATCH_SIZES, rep, settings)
        const load = () => round[0]?.otherCpuLoad ?? 0
        for (let attempt = 2; attempt <= settings.attempts && load() > settings.maxOtherLoad; attempt++) {
          log(
            `rep ${rep} ${v.name}: other processes took ${load().toFixed(2)} CPU meanwhile; measuring again`,
          )
          round = await measureRound(conn, v, DISPATCH_SIZES, rep, settings)
        }
        all.push(...round)
        const costs = round.map((m) => `${m.size}: ${m.redisCpuUsPerJob.toFixed(1)} us`).join(', ')
        log(
          `rep ${rep}/${repetitions} ${v.name}: Redis CPU per job ${costs}; other load ${load().toFixed(2)} CPU`,
        )
      }
    }
    const result: DispatchCostResult = {
      settings: { ...settings, repetitions, zsetMaxListpackEntries: Number(listpack) },
      dispatchScriptSha1: DISPATCH_SHA1,
      variants: summariseVariants(all),
      measurements: all,
      problems: [...new Set(all.flatMap((m) => m.problems))],
    }
    return result
  } finally {
    conn.disconnect()
    await server.stop()
  }
}

/** Suite d of `npm run bench`; it fails when a script failed or a pool's invariants broke. */
export async function runDispatchCost(ctx: BenchContext, repetitions: number): Promise<DispatchCostResult> {
  const quiet = ctx.isQuick ? {} : { quietWaitMs: ctx.quietWaitMs }
  const d = await measureDispatchCost({ isQuick: ctx.isQuick, repetitions, ...quiet }, ctx.log)
  if (d.problems.length > 0) throw new Error(`dispatch cost: ${d.problems.join('; ')}`)
  return d
}

/** Each variant's figures over the rounds: medians and ranges by size, and the 1,000 / 8 ratios. */
export function summariseVariants(all: readonly Measurement[]): DispatchVariantRow[] {
  return [...new Set(all.map((m) => m.variant))].map((variant): DispatchVariantRow => {
    const of = (size: number) => all.filter((m) => m.variant === variant && m.size === size)
    const s = (size: number, pick: (m: Measurement) => number) => spread(of(size).map(pick))
    const ratio = (pick: (m: Measurement) => number) => ({
      ofMedians: s(1000, pick).median / s(8, pick).median,
      perRound: spread(
        of(1000).flatMap((big) => {
          const small = of(8).find((m) => m.repetition === big.repetition)
          return small ? [pick(big) / pick(small)] : []
        }),
      ),
    })
    const names = new Set(
      all.filter((m) => m.variant === variant).flatMap((m) => Object.keys(m.commandUsPerJob)),
    )
    const commandUsPerJob: DispatchVariantRow['commandUsPerJob'] = {}
    for (const name of names) {
      if (['info', 'config', 'ping', 'config|resetstat'].includes(name)) continue
      commandUsPerJob[name] = Object.fromEntries(
        DISPATCH_SIZES.map((size) => [size, s(size, (m) => m.commandUsPerJob[name] ?? 0).median]),
      )
    }
    return {
      variant,
      isFloor: all.some((m) => m.variant === variant && m.isFloor === true),
      bySize: DISPATCH_SIZES.map((size) => ({
        size,
        redisCpuUsPerJob: s(size, (m) => m.redisCpuUsPerJob),
        scriptUsPerJob: s(size, (m) => m.scriptUsPerJob),
        jobsPerSecond: s(size, (m) => m.jobsPerSecond),
        affinityHitRate: s(size, (m) => m.affinityHitRate).median,
      })),
      redisCpuRatio: ratio((m) => m.redisCpuUsPerJob),
      scriptRatio: ratio((m) => m.scriptUsPerJob),
      commandUsPerJob,
    }
  })
}
