/**
 * Dispatch cost against pool size: what one dispatch costs Redis with 8, 100 and 1,000 registered
 * workers. The acceptance bar is cost(1000) <= 1.5 x cost(8): no O(N) work per dispatch. Beside the
 * library's script it measures a floor (dispatch-floor.ts): the least a placement of 64 jobs writes.
 *
 *   node dist/dispatch-cost.js [--quick] [--json <file>] [--reps <n>] [--jobs <n>] [--quiet-wait-ms <n>]
 *                              [--zset-max-listpack-entries <n>]
 *
 * Starts its own redis-server, so it never disturbs (nor is disturbed by) another Redis.
 * `--zset-max-listpack-entries` sets that Redis setting before the pools are made: ZSETs of up to
 * that many members (128 by default) are stored as listpacks, which Redis scans member by member.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { type Measurement, measureRound, type RoundSettings, type Variant } from './dispatch-round.js'
import { commandTable, dispatchCostTables } from './dispatch-tables.js'
import { connectWithScripts, loadLibraryScripts } from './library-scripts.js'
import { startRedisServer } from './redis-server.js'
import { DISPATCH_SIZES, type DispatchVariantRow, summariseVariants } from './suite-dispatch-cost.js'

const VARIANTS: readonly Variant[] = [
  { name: 'batch 1', batch: 1, hasSessions: false },
  { name: 'batch 64', batch: 64, hasSessions: false },
  { name: 'batch 1, sessions', batch: 1, hasSessions: true },
  { name: 'batch 64, sessions', batch: 64, hasSessions: true },
  // Not the library's script: the least a placement of 64 jobs must do (dispatch-floor.ts).
  { name: 'batch 64, floor', batch: 64, hasSessions: false, isFloor: true },
]

const RUN_DEFAULTS = Object.freeze({
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
  /** A measurement during which other processes kept more CPUs busy than this is taken again... */
  maxOtherLoad: 0.25,
  /** ...up to this many times in all; the last one is kept, and shows its load. */
  attempts: 3,
})

const QUICK = Object.freeze({
  jobs: 300,
  blockJobs: 100,
  repetitions: 1,
  warmupJobs: 64,
  firstPassJobs: 0,
  quietWaitMs: 0,
  attempts: 1,
})

/** An integer option of at least `min` (1 unless given), or `fallback` when it is not set. */
function intOption(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isInteger(n) || n < min)
    throw new Error(`--${name} must be an integer >= ${min} (got ${value})`)
  return n
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('model name'))
    return line?.split(':')[1]?.trim() ?? 'unknown'
  } catch {
    return 'unknown'
  }
}

function otherLoad(round: readonly Measurement[]): number {
  return round[0]?.otherCpuLoad ?? 0
}

/** Prints the tables the doc shows (dispatchCostTables), from this run's measurements. */
function report(all: Measurement[]): DispatchVariantRow[] {
  const variants = summariseVariants(all)
  const tables = dispatchCostTables(variants)
  console.log('\nMedian (min-max) over repetitions; per-job figures are for the timed jobs only.\n')
  console.log(tables.measured)
  console.log('\ncost(1000) / cost(8): ratio of medians (range of the per-repetition ratios)\n')
  console.log(tables.ratios)
  for (const v of variants) {
    console.log(
      `\nINFO commandstats, ${v.variant}: usec per job (inner calls are counted inside evalsha too)\n`,
    )
    console.log(commandTable(v))
  }
  return variants
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      json: { type: 'string' },
      reps: { type: 'string' },
      'quiet-wait-ms': { type: 'string' },
      jobs: { type: 'string' },
      'zset-max-listpack-entries': { type: 'string' },
    },
  })
  const listpackEntries =
    values['zset-max-listpack-entries'] === undefined
      ? undefined
      : intOption('zset-max-listpack-entries', values['zset-max-listpack-entries'], 128, 0)
  const base = values.quick ? { ...RUN_DEFAULTS, ...QUICK } : RUN_DEFAULTS
  const repetitions = intOption('reps', values.reps, base.repetitions)
  const settings: RoundSettings = {
    ...base,
    jobs: intOption('jobs', values.jobs, base.jobs),
    // How long a round may wait for a quiet machine (main.ts keeps the whole benchmark bounded).
    quietWaitMs:
      values['quiet-wait-ms'] === '0'
        ? 0
        : intOption('quiet-wait-ms', values['quiet-wait-ms'], base.quietWaitMs),
  }

  const scripts = await loadLibraryScripts()
  const server = await startRedisServer()
  const onSignal = () => void server.stop().finally(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const conn = await connectWithScripts(server.url, scripts)
  if (listpackEntries !== undefined) await conn.config('SET', 'zset-max-listpack-entries', listpackEntries)
  // What the server uses, set here or not: pools up to this many workers are stored as listpacks.
  const [, listpackSetting] = (await conn.config('GET', 'zset-max-listpack-entries')) as [string, string]
  const machine = {
    cpus: availableParallelism(),
    cpuModel: cpuModel(),
    node: process.version,
    redis: server.version,
    dispatchScriptSha1: scripts.dispatch.sha1,
    zsetMaxListpackEntries: Number(listpackSetting),
  }
  console.log(
    `dispatch cost: ${machine.cpus} CPUs (${machine.cpuModel}), Node ${machine.node}, Redis ${machine.redis}, ` +
      `dispatch script ${machine.dispatchScriptSha1.slice(0, 12)}, zset-max-listpack-entries ${machine.zsetMaxListpackEntries}`,
  )
  console.log(
    `${settings.jobs} jobs per pool size and round after ${settings.warmupJobs} warm-up jobs, ` +
      `in blocks of ${settings.blockJobs} interleaved across pool sizes ${DISPATCH_SIZES.join('/')}; ` +
      `${repetitions} rounds per variant; ${settings.inFlight} calls in flight`,
  )

  const all: Measurement[] = []
  let failures = 0
  try {
    if (base.firstPassJobs > 0) {
      console.log(`first pass (discarded): ${base.firstPassJobs} jobs per variant and size`)
      const firstPass = { ...settings, jobs: base.firstPassJobs, quietWaitMs: 0 }
      for (const v of VARIANTS) await measureRound(conn, scripts, v, DISPATCH_SIZES, 0, firstPass)
    }
    for (let rep = 1; rep <= repetitions; rep++) {
      for (const v of VARIANTS) {
        let round = await measureRound(conn, scripts, v, DISPATCH_SIZES, rep, settings)
        for (let attempt = 2; attempt <= base.attempts && otherLoad(round) > base.maxOtherLoad; attempt++) {
          console.log(
            `rep ${rep}/${repetitions} ${v.name}: other processes took ${otherLoad(round).toFixed(2)} CPU ` +
              'meanwhile; measuring again',
          )
          round = await measureRound(conn, scripts, v, DISPATCH_SIZES, rep, settings)
        }
        const first = round[0]
        if (first) {
          // No wait for a quiet machine (--quick, or --quiet-wait-ms 0): the load before was not measured.
          const before = Number.isNaN(first.loadBefore)
            ? ''
            : `machine load before ${first.loadBefore.toFixed(2)} CPU, `
          console.log(
            `rep ${rep}/${repetitions} ${v.name}: probe: cpu loop ${first.probe.cpuLoopMs} ms, ` +
              `ping ${first.probe.pingUs} us, ${before}other processes during ${first.otherCpuLoad.toFixed(2)} CPU`,
          )
        }
        for (const m of round) {
          all.push(m)
          console.log(
            `  ${String(m.size).padStart(4)} workers: ${m.redisCpuUsPerJob.toFixed(1)} us CPU/job, ` +
              `${m.scriptUsPerJob.toFixed(1)} us in script, ${Math.round(m.jobsPerSecond)} jobs/s` +
              (v.hasSessions ? `, ${(m.affinityHitRate * 100).toFixed(0)}% hits` : ''),
          )
        }
        const problems = round[0]?.problems ?? []
        for (const p of problems) console.error(`  PROBLEM: ${p}`)
        if (problems.length > 0) failures++
      }
    }
  } finally {
    conn.disconnect()
    await server.stop()
  }

  const summary = report(all)
  if (values.json !== undefined) {
    const out = {
      machine,
      settings: { ...settings, repetitions, sizes: DISPATCH_SIZES },
      summary,
      measurements: all,
    }
    writeFileSync(values.json, `${JSON.stringify(out, null, 2)}\n`)
    console.log(`\nresults written to ${values.json}`)
  }
  if (failures > 0) {
    console.error(`\n${failures} measurement(s) had problems: see PROBLEM lines above`)
    return 1
  }
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  },
)
