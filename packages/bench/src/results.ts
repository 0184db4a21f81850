/** Everything one benchmark run produced: what docs/bench/results.json holds and the tables are made of. */
import type { MachineInfo } from './machine-info.js'
import type { DispatchCostResult } from './suite-dispatch-cost.js'
import type { LatencyResult } from './suite-latency.js'
import type { RedisLimitResult } from './suite-redis-limit.js'
import type { RoutingResult } from './suite-routing.js'
import type { StreamingResult } from './suite-streaming.js'
import type { ThroughputResult } from './suite-throughput.js'
import type { Target } from './targets.js'

export const SUITE_NAMES = [
  'throughput',
  'closed-loop',
  'open-loop',
  'routing',
  'redis-limit',
  'dispatch-cost',
  'streaming',
] as const

export type SuiteName = (typeof SUITE_NAMES)[number]

/** Where each suite's results are in {@link BenchResults}. */
const RESULT_FIELD = {
  throughput: 'throughput',
  'closed-loop': 'closedLoop',
  'open-loop': 'openLoop',
  routing: 'routing',
  'redis-limit': 'redisLimit',
  'dispatch-cost': 'dispatchCost',
  streaming: 'streaming',
} as const satisfies Record<SuiteName, keyof BenchResults>

/** Suites whose results were kept from an earlier run, and the run that measured them. */
export interface CarriedOver {
  suites: SuiteName[]
  startedAt: string
  command: string
  machine: MachineInfo
}

export interface BenchResults {
  startedAt: string
  durationSeconds: number
  /** The command that produced these results. */
  command: string
  isQuick: boolean
  repetitions: number
  machine: MachineInfo
  /** SHA1 of the dispatch script the library embeds. */
  dispatchScriptSha1: string
  suites: SuiteName[]
  /** Measurements taken again because other processes disturbed them, and the most allowed. */
  retries: { used: number; max: number }
  throughput?: ThroughputResult
  closedLoop?: LatencyResult
  openLoop?: LatencyResult
  routing?: RoutingResult
  redisLimit?: RedisLimitResult
  dispatchCost?: DispatchCostResult
  streaming?: StreamingResult
  targets: Target[]
  /** Suites this run did not measure whose results it kept from the run before it (see carryOver). */
  carriedOver?: CarriedOver[]
  /** Suites that failed, with their error. */
  errors: { suite: SuiteName; message: string }[]
}

function copyField<K extends keyof BenchResults>(to: BenchResults, from: BenchResults, key: K): void {
  to[key] = from[key]
}

/**
 * Keeps in `r` the results of the suites it did not run from `previous` (the results it is about
 * to replace), with the run that measured them, so that a run of some suites rewrites only their
 * part of the doc. Results of a quick run and of a full one are never mixed.
 */
export function carryOver(r: BenchResults, previous: BenchResults): void {
  if (previous.isQuick !== r.isQuick) return
  const kept = new Map<string, CarriedOver>()
  for (const suite of SUITE_NAMES) {
    const field = RESULT_FIELD[suite]
    if (r.suites.includes(suite) || previous[field] === undefined) continue
    copyField(r, previous, field)
    const from = previous.carriedOver?.find((c) => c.suites.includes(suite)) ?? previous
    const run = kept.get(from.startedAt) ?? {
      suites: [],
      startedAt: from.startedAt,
      command: from.command,
      machine: from.machine,
    }
    run.suites.push(suite)
    kept.set(from.startedAt, run)
  }
  if (kept.size > 0) r.carriedOver = [...kept.values()]
}
