/** The result tables, in Markdown: printed by the run and written into docs/benchmarks.md. */
import { dispatchCostTables } from './dispatch-tables.js'
import type { BenchResults } from './results.js'
import { fmt, markdownTable, type Spread } from './stats.js'
import { streamingCommandsTable, streamingMemoryTable, streamingTable } from './streaming-tables.js'
import type { LatencyResult } from './suite-latency.js'
import type { RedisLimitResult } from './suite-redis-limit.js'
import { POLICY_LABEL, type RoutingResult } from './suite-routing.js'
import type { ThroughputResult, ThroughputRow } from './suite-throughput.js'
import { SYSTEM_LABEL } from './systems.js'
import { limitRatios, type Target } from './targets.js'

const ms = (s: Spread) => fmt(s, 2, 1 / 1_000)

/** A share as `12.5% (11.0-14.0%)`. */
function pct(s: Spread, digits: number): string {
  if (!Number.isFinite(s.median)) return '-'
  const v = (x: number) => (x * 100).toFixed(digits)
  return s.min === s.max ? `${v(s.median)}%` : `${v(s.median)}% (${v(s.min)}-${v(s.max)}%)`
}

export function targetsTable(targets: readonly Target[]): string {
  return markdownTable(
    ['target', 'goal', 'measured', 'met'],
    targets.map((t) => [
      t.label,
      t.goal,
      t.measured,
      (t.isMet ? 'yes' : `**no**: ${t.missedBy ?? ''}`) +
        (!t.isMet && t.plain && !t.plain.isMet
          ? `; plain commands, no library: ${t.plain.measured}, over the bar too`
          : '') +
        (!t.isMet && t.floor && !t.floor.isMet
          ? `; ${t.floor.name}: ${t.floor.measured}, over the bar in every run too${t.floor.kind === 'latency' ? ": below this machine's floor" : ''}`
          : ''),
    ]),
  )
}

export function throughputTable(t: ThroughputResult): string {
  return markdownTable(
    ['system', 'concurrency', 'jobs/s', 'CPU us/job (all)', 'Redis', 'producer', 'worker'],
    t.rows.map((r) => [
      SYSTEM_LABEL[r.system],
      String(r.concurrency),
      fmt(r.jobsPerSecond, 0),
      fmt(r.totalUsPerJob, 1),
      fmt(r.redisUsPerJob, 1),
      fmt(r.producerUsPerJob, 1),
      fmt(r.workerUsPerJob, 1),
    ]),
  )
}

/** Median over the runs of a row of a per-job figure. */
function medianOf(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  if (sorted.length === 0) return 0
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/** A count per job: `1.00`, or `1/256` when one command serves many jobs. */
export function perJobCount(v: number): string {
  if (v <= 0) return '0'
  return v >= 0.1 ? v.toFixed(2) : `1/${Math.round(1 / v)}`
}

function commandsText(perJob: readonly Record<string, number>[]): string {
  const names = new Set(perJob.flatMap((c) => Object.keys(c)))
  const items = [...names]
    .map((n) => ({ n, v: medianOf(perJob.map((c) => c[n] ?? 0)) }))
    .filter((x) => x.v >= 0.001)
    .sort((a, b) => b.v - a.v)
  const total = items.reduce((s, x) => s + x.v, 0)
  return `${perJobCount(total)}: ${items.map((x) => `${x.n.toLowerCase()} ${perJobCount(x.v)}`).join(', ')}`
}

/** Socket writes / reads per job of one process, medians of the runs. */
export function socketText(io: readonly { writes: number; reads: number }[]): string {
  return `${perJobCount(medianOf(io.map((x) => x.writes)))} / ${perJobCount(medianOf(io.map((x) => x.reads)))}`
}

/** Commands per job: sent by each process, and run by Redis (inside scripts included). */
export function commandsTable(t: ThroughputResult): string {
  return markdownTable(
    [
      'system',
      'concurrency',
      'producer sends per job',
      'worker sends per job',
      'socket writes / reads per job: producer; worker',
      'Redis runs per job (top)',
    ],
    t.rows.map((r: ThroughputRow) => {
      const redis = r.runs.map((run) =>
        Object.fromEntries(Object.entries(run.redisCallsPerJob).map(([k, v]) => [k, v.calls])),
      )
      const names = new Set(redis.flatMap((c) => Object.keys(c)))
      const top = [...names]
        .map((n) => ({ n, v: medianOf(redis.map((c) => c[n] ?? 0)) }))
        .sort((a, b) => b.v - a.v)
      const total = top.reduce((s, x) => s + x.v, 0)
      return [
        SYSTEM_LABEL[r.system],
        String(r.concurrency),
        commandsText(r.runs.map((run) => run.clientCommandsPerJob.producer)),
        commandsText(r.runs.map((run) => run.clientCommandsPerJob.worker)),
        `${socketText(r.runs.map((run) => run.socketIoPerJob.producer))}; ${socketText(r.runs.map((run) => run.socketIoPerJob.worker))}`,
        `${total.toFixed(1)}: ${top
          .slice(0, 6)
          .map((x) => `${x.n} ${x.v.toFixed(2)}`)
          .join(', ')}`,
      ]
    }),
  )
}

/** Where Redis spends its time per job (INFO commandstats usec, median over runs). */
export function redisTimeTable(t: ThroughputResult, concurrency: number): string {
  const rows = t.rows.filter((r) => r.concurrency === concurrency)
  const names = new Set(rows.flatMap((r) => r.runs.flatMap((run) => Object.keys(run.redisCallsPerJob))))
  const usec = (r: ThroughputRow, n: string) =>
    medianOf(r.runs.map((run) => run.redisCallsPerJob[n]?.usec ?? 0))
  const ordered = [...names].sort(
    (a, b) => Math.max(...rows.map((r) => usec(r, b))) - Math.max(...rows.map((r) => usec(r, a))),
  )
  return markdownTable(
    ['command', ...rows.map((r) => `${SYSTEM_LABEL[r.system]} us/job`)],
    ordered.slice(0, 10).map((n) => [n, ...rows.map((r) => usec(r, n).toFixed(2))]),
  )
}

export function latencyTable(l: LatencyResult): string {
  const isOpen = l.kind === 'open-loop'
  return markdownTable(
    isOpen
      ? [
          'system',
          'achieved jobs/s',
          'p50 ms',
          'p90 ms',
          'p99 ms',
          'max ms',
          'send lag p99 ms',
          'minus handler: p50 / p99 ms',
          'CPU us/job',
        ]
      : ['system', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms', 'CPU us/job'],
    l.rows.map((r) =>
      isOpen
        ? [
            SYSTEM_LABEL[r.system],
            fmt(r.jobsPerSecond, 0),
            ms(r.p50Us),
            ms(r.p90Us),
            ms(r.p99Us),
            ms(r.maxUs),
            r.sendLagP99Us ? ms(r.sendLagP99Us) : '-',
            r.overheadP50Us && r.overheadP99Us ? `${ms(r.overheadP50Us)} / ${ms(r.overheadP99Us)}` : '-',
            fmt(r.cpuUsPerJob, 0),
          ]
        : [
            SYSTEM_LABEL[r.system],
            ms(r.p50Us),
            ms(r.p90Us),
            ms(r.p99Us),
            ms(r.maxUs),
            ms(r.meanUs),
            fmt(r.cpuUsPerJob, 0),
          ],
    ),
  )
}

export function routingTable(r: RoutingResult): string {
  return markdownTable(
    ['policy', 'mean ms', 'p50 ms', 'p99 ms', 'jobs on the slow worker', 'utilisation reached'],
    r.rows.map((row) => [
      POLICY_LABEL[row.policy],
      ms(row.meanUs),
      ms(row.p50Us),
      ms(row.p99Us),
      pct(row.slowShare, 1),
      pct(row.utilisation, 0),
    ]),
  )
}

export function affinityTable(r: RoutingResult): string {
  return markdownTable(
    ['workload', 'affinity hit rate', 'best possible', 'load max/mean', 'p50 ms', 'p99 ms'],
    r.affinity.map((a) => [
      a.hasSessions ? 'sessions (3 hot: 30% of requests)' : 'no sessions (least-loaded)',
      a.hasSessions ? pct(a.hitRate, 1) : '-',
      a.hasSessions ? pct(a.idealHitRate, 1) : '-',
      fmt(a.loadSpread, 2),
      ms(a.p50Us),
      ms(a.p99Us),
    ]),
  )
}

export function redisLimitTable(l: RedisLimitResult): string {
  const rows = l.rows.map((r) => [
    r.name,
    String(r.pipeline),
    fmt(r.requestsPerSecond, 0),
    fmt(r.jobsPerSecond, 0),
    fmt(r.redisUsPerJob, 2),
  ])
  for (const p of l.plainJobLimit) {
    rows.push([
      '**one job: XADD + XREADGROUP + XACK + SET + PUBLISH**',
      String(p.pipeline),
      '-',
      `**${fmt(p.jobsPerSecond, 0)}**`,
      fmt(p.redisUsPerJob, 2),
    ])
  }
  return markdownTable(
    ['redis-benchmark, 50 clients', '-P', 'requests/s', 'jobs/s', 'Redis CPU us/job'],
    rows,
  )
}

export function limitRatioTable(r: BenchResults): string {
  return markdownTable(
    ['Redis limit', 'limit jobs/s', 'Hedgeyard bulk jobs/s (c=50) / limit'],
    limitRatios(r.throughput, r.redisLimit).map((x) => [
      x.name,
      x.limitJobsPerSecond.toFixed(0),
      `${(x.ratio * 100).toFixed(1)}%`,
    ]),
  )
}

/** What the run prints at the end: the targets, then the main figures. */
export function consoleSummary(r: BenchResults): string {
  const parts: string[] = []
  if (r.targets.length > 0)
    parts.push(
      'Targets (ratios from this run: median, and range of per-repetition ratios)\n',
      targetsTable(r.targets),
    )
  if (r.throughput) {
    parts.push('\nThroughput (median and min-max over runs)\n', throughputTable(r.throughput))
    parts.push('\nCommands per job\n', commandsTable(r.throughput))
    for (const c of r.throughput.settings.concurrencies) {
      parts.push(
        `\nRedis time per job by command (INFO commandstats usec), concurrency ${c}\n`,
        redisTimeTable(r.throughput, c),
      )
    }
  }
  if (r.throughput && r.redisLimit) parts.push('\nAgainst the Redis limit\n', limitRatioTable(r))
  if (r.closedLoop) parts.push('\nClosed loop\n', latencyTable(r.closedLoop))
  if (r.openLoop) parts.push('\nOpen loop\n', latencyTable(r.openLoop))
  if (r.routing) parts.push('\nRouting quality\n', routingTable(r.routing), '\n', affinityTable(r.routing))
  if (r.redisLimit) parts.push('\nRedis limit\n', redisLimitTable(r.redisLimit))
  if (r.dispatchCost)
    parts.push('\nDispatch cost, cost(1000) / cost(8)\n', dispatchCostTables(r.dispatchCost.variants).ratios)
  if (r.streaming) {
    parts.push(
      '\nStreaming\n',
      streamingTable(r.streaming),
      '\n',
      streamingMemoryTable(r.streaming),
      '\n',
      streamingCommandsTable(r.streaming),
    )
  }
  return parts.join('\n')
}
