/**
 * Suite d alone (suite-dispatch-cost.ts): dispatch cost against pool size, with its own
 * redis-server, printed as the tables of docs/benchmarks.md.
 *
 *   node dist/dispatch-cost.js [--quick] [--json <file>] [--reps <n>] [--jobs <n>] [--quiet-wait-ms <n>]
 *                              [--zset-max-listpack-entries <n>]
 *
 * `--zset-max-listpack-entries` sets that Redis setting before the pools are made: ZSETs of up to
 * that many members (128 by default) are stored as listpacks, which Redis scans member by member.
 * It exits non-zero only when the script fails or a pool's invariants break, never on a timing.
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { checkArgs, numberOption, type OptionSpec, runMain } from './cli.js'
import { commandTable, dispatchCostTables } from './dispatch-tables.js'
import { measureDispatchCost } from './suite-dispatch-cost.js'

const USAGE =
  'usage: node packages/bench/dist/dispatch-cost.js [--quick] [--json <file>] [--reps <n>] [--jobs <n>] [--quiet-wait-ms <n>] [--zset-max-listpack-entries <n>]'
const OPTIONS = {
  quick: { type: 'boolean', default: false },
  json: { type: 'string' },
  reps: { type: 'string' },
  'quiet-wait-ms': { type: 'string' },
  jobs: { type: 'string' },
  'zset-max-listpack-entries': { type: 'string' },
} as const satisfies OptionSpec

async function main(): Promise<number> {
  checkArgs('dispatch-cost.js', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  const number = (name: keyof typeof values, min = 1) => {
    const value = values[name]
    return typeof value === 'string' ? numberOption(name, value, 0, { min }) : undefined
  }
  const given = {
    repetitions: number('reps'),
    jobs: number('jobs'),
    quietWaitMs: number('quiet-wait-ms', 0),
    listpackEntries: number('zset-max-listpack-entries', 0),
  }
  const options = Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined))
  const d = await measureDispatchCost({ isQuick: values.quick, ...options }, (line) => console.log(line))
  const tables = dispatchCostTables(d.variants)
  console.log(
    `\nMedian (min-max) over the rounds\n\n${tables.measured}\n\ncost(1000) / cost(8)\n\n${tables.ratios}`,
  )
  for (const v of d.variants)
    console.log(`\nINFO commandstats, ${v.variant}, usec per job\n\n${commandTable(v)}`)
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify(d, null, 2)}\n`)
  for (const p of d.problems) console.error(`PROBLEM: ${p}`)
  return d.problems.length > 0 ? 1 : 0
}

runMain(main)
