/** Everything one benchmark run produced: what docs/bench/results.json holds and the doc is made of. */
import type { MachineInfo } from './machine-info.js'
import type { DispatchCostResult } from './suite-dispatch-cost.js'
import type { LatencyResult } from './suite-latency.js'
import type { RedisLimitResult } from './suite-redis-limit.js'
import type { RoutingResult } from './suite-routing.js'
import type { ThroughputResult } from './suite-throughput.js'
import type { Target } from './targets.js'

export const SUITE_NAMES = [
  'throughput',
  'closed-loop',
  'open-loop',
  'routing',
  'redis-limit',
  'dispatch-cost',
] as const

export type SuiteName = (typeof SUITE_NAMES)[number]

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
  targets: Target[]
  /** Suites that failed, with their error. */
  errors: { suite: SuiteName; message: string }[]
}
