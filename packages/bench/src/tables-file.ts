/**
 * docs/bench/tables.md: every table of a run, each between the markers of its name,
 *
 *   <!-- table:throughput -->
 *   | system | ... |
 *   <!-- /table -->
 *
 * and the same blocks copied into docs/benchmarks.md, which is written by hand: wherever it has
 * the markers of a table, the run replaces what is between them, and touches nothing else.
 */
import { dispatchCostTables } from './dispatch-tables.js'
import {
  affinityTable,
  commandsTable,
  conditionsTable,
  latencyTable,
  limitRatioTable,
  machineTable,
  mixedTable,
  redisLimitTable,
  redisTimeTable,
  routingSettingsTable,
  routingTable,
  runTable,
  targetsTable,
  throughputTable,
} from './report-tables.js'
import type { BenchResults } from './results.js'
import { streamingCommandsTable, streamingMemoryTable, streamingTable } from './streaming-tables.js'

/** Every table of `r`, by name, in the order the file lists them. */
export function renderTables(r: BenchResults): Map<string, string> {
  const out = new Map<string, string>([
    ['run', runTable(r)],
    ['machine', machineTable(r)],
    ['targets', targetsTable(r.targets)],
  ])
  if (r.throughput && r.redisLimit) out.set('limit-ratios', limitRatioTable(r))
  if (r.throughput) {
    out.set('throughput', throughputTable(r.throughput))
    out.set('throughput-commands', commandsTable(r.throughput))
    for (const c of r.throughput.settings.concurrencies)
      out.set(`redis-time-c${c}`, redisTimeTable(r.throughput, c))
  }
  if (r.redisLimit) out.set('redis-limit', redisLimitTable(r.redisLimit))
  if (r.closedLoop) out.set('closed-loop', latencyTable(r.closedLoop))
  if (r.openLoop) out.set('open-loop', latencyTable(r.openLoop))
  if (r.dispatchCost) {
    const d = dispatchCostTables(r.dispatchCost.variants)
    out.set('dispatch-cost', d.measured)
    out.set('dispatch-cost-ratios', d.ratios)
    out.set('dispatch-cost-commands', d.commands)
  }
  if (r.routing) {
    out.set('routing-settings', routingSettingsTable(r.routing))
    out.set('routing', routingTable(r.routing))
    out.set('affinity', affinityTable(r.routing))
    if (r.routing.mixed) out.set('mixed-pool', mixedTable(r.routing))
  }
  if (r.streaming) {
    out.set('streaming', streamingTable(r.streaming))
    out.set('streaming-memory', streamingMemoryTable(r.streaming))
    out.set('streaming-commands', streamingCommandsTable(r.streaming))
  }
  out.set('conditions', conditionsTable(r))
  return out
}

const BLOCK = /<!-- table:([\w-]+) -->\n([\s\S]*?)\n?<!-- \/table -->/g

/** The tables of a file written by {@link tablesFile} (or the blocks of a doc), by name. */
export function tableBlocks(text: string): Map<string, string> {
  return new Map([...text.matchAll(BLOCK)].map((m) => [m[1] as string, (m[2] as string).trim()]))
}

/** docs/bench/tables.md. */
export function tablesFile(tables: ReadonlyMap<string, string>): string {
  const blocks = [...tables].map(([name, table]) => `<!-- table:${name} -->\n${table}\n<!-- /table -->`)
  const head =
    '# Benchmark tables\n\nWritten by `npm run bench`; docs/benchmarks.md shows each of them where it explains it.'
  return `${[head, ...blocks].join('\n\n')}\n`
}

/** `doc` with the block of each table it marks replaced by that table; blocks of no table stay. */
export function spliceTables(doc: string, tables: ReadonlyMap<string, string>): string {
  return doc.replace(BLOCK, (block, name: string) => {
    const table = tables.get(name)
    return table === undefined ? block : `<!-- table:${name} -->\n${table}\n<!-- /table -->`
  })
}
