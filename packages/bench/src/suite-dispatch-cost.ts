/**
 * Suite d, dispatch cost against pool size (8, 100, 1,000 registered workers): runs
 * dispatch-cost.js as it is (its own redis-server, its own rounds) and reads its JSON.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { Measurement } from './dispatch-round.js'
import type { BenchContext } from './measure-run.js'
import { type Spread, spread } from './stats.js'

export const DISPATCH_SIZES = [8, 100, 1000] as const
export const DISPATCH_LIMIT_RATIO = 1.5

/** What the doc shows of one variant. */
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
  settings: Record<string, unknown>
  dispatchScriptSha1: string
  variants: DispatchVariantRow[]
  /** Every round's conditions: probe and the load of other processes. */
  conditions: { cpuLoopMs: Spread; pingUs: Spread; otherCpuLoad: Spread }
  measurements: Measurement[]
}

interface DispatchCostJson {
  machine: { dispatchScriptSha1: string }
  settings: Record<string, unknown>
  measurements: Measurement[]
}

/** The variants of the library's script (the floor aside). */
export function libraryDispatchVariants(d: DispatchCostResult): DispatchVariantRow[] {
  return d.variants.filter((v) => !v.isFloor)
}

/**
 * The library's variant whose cost grows most from 8 to 1,000 workers (ratio of medians): the
 * one the target judges.
 */
export function worstDispatchVariant(d: DispatchCostResult): DispatchVariantRow {
  return libraryDispatchVariants(d).reduce((w, v) =>
    v.redisCpuRatio.ofMedians > w.redisCpuRatio.ofMedians ? v : w,
  )
}

/** The floor's row, when the run measured it. */
export function dispatchFloorVariant(d: DispatchCostResult): DispatchVariantRow | undefined {
  return d.variants.find((v) => v.isFloor)
}

export async function runDispatchCost(ctx: BenchContext, repetitions: number): Promise<DispatchCostResult> {
  const dir = mkdtempSync(join(tmpdir(), 'hedgeyard-bench-dispatch-'))
  const json = join(dir, 'dispatch-cost.json')
  const script = fileURLToPath(new URL('./dispatch-cost.js', import.meta.url))
  const args = [script, '--json', json, '--reps', String(repetitions)]
  if (ctx.isQuick) args.push('--quick')
  else args.push('--quiet-wait-ms', String(ctx.quietWaitMs))
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
      for (const stream of [child.stdout, child.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          if (line.trim() !== '') ctx.log(`  [dispatch-cost] ${line}`)
        })
      }
      child.once('error', reject)
      child.once('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`dispatch-cost.js exited with ${code}`)),
      )
    })
    const out = JSON.parse(readFileSync(json, 'utf8')) as DispatchCostJson
    return summarise(out)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Each variant's figures over the rounds: medians and ranges by size, and the 1,000 / 8 ratios. */
export function summariseVariants(all: readonly Measurement[]): DispatchVariantRow[] {
  return [...new Set(all.map((m) => m.variant))].map((variant): DispatchVariantRow => {
    const of = (size: number) => all.filter((m) => m.variant === variant && m.size === size)
    const s = (size: number, pick: (m: Measurement) => number) => spread(of(size).map(pick))
    const paired = (pick: (m: Measurement) => number) =>
      spread(
        of(1000).flatMap((big) => {
          const small = of(8).find((m) => m.repetition === big.repetition)
          return small ? [pick(big) / pick(small)] : []
        }),
      )
    const names = new Set<string>()
    for (const m of all)
      if (m.variant === variant) for (const n of Object.keys(m.commandUsPerJob)) names.add(n)
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
      redisCpuRatio: {
        ofMedians: s(1000, (m) => m.redisCpuUsPerJob).median / s(8, (m) => m.redisCpuUsPerJob).median,
        perRound: paired((m) => m.redisCpuUsPerJob),
      },
      scriptRatio: {
        ofMedians: s(1000, (m) => m.scriptUsPerJob).median / s(8, (m) => m.scriptUsPerJob).median,
        perRound: paired((m) => m.scriptUsPerJob),
      },
      commandUsPerJob,
    }
  })
}

function summarise(out: DispatchCostJson): DispatchCostResult {
  const all = out.measurements
  return {
    settings: out.settings,
    dispatchScriptSha1: out.machine.dispatchScriptSha1,
    variants: summariseVariants(all),
    conditions: {
      cpuLoopMs: spread(all.map((m) => m.probe.cpuLoopMs)),
      pingUs: spread(all.map((m) => m.probe.pingUs)),
      otherCpuLoad: spread(all.map((m) => m.otherCpuLoad)),
    },
    measurements: all,
  }
}
