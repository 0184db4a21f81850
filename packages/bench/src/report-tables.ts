/** The result tables, in Markdown: printed by the run and written to docs/bench/tables.md. */
import type { BenchResults } from './results.js'
import { fmt, markdownTable, type Spread, spread } from './stats.js'
import type { LatencyResult } from './suite-latency.js'
import type { RedisLimitResult } from './suite-redis-limit.js'
import { POLICY_LABEL, type RoutingResult } from './suite-routing.js'
import type { ThroughputResult, ThroughputRow } from './suite-throughput.js'
import { SYSTEM_LABEL } from './systems.js'
import { limitRatios, type Target } from './targets.js'

const ms = (s: Spread) => fmt(s, 2, 1 / 1_000)

/** A share as `12.5% (11.0-14.0%)`. */
export function pct(s: Spread, digits: number): string {
  if (!Number.isFinite(s.median)) return '-'
  const v = (x: number) => (x * 100).toFixed(digits)
  return s.min === s.max ? `${v(s.median)}%` : `${v(s.median)}% (${v(s.min)}-${v(s.max)}%)`
}

const median = (values: readonly number[]) => spread(values).median

/** A count per job: `1.00`, or `1/256` when one command serves many jobs. */
export function perJobCount(v: number): string {
  if (!Number.isFinite(v)) return '-'
  if (v <= 0) return '0'
  return v >= 0.1 ? v.toFixed(2) : `1/${Math.round(1 / v)}`
}

/** `2.00: evalsha 1.00, xreadgroup 1.00`: the total, then the largest items (`top` of them). */
export function countList(counts: Readonly<Record<string, number>>, top = 6, show = perJobCount): string {
  const items = Object.entries(counts)
    .filter(([, v]) => v > 0)
    .sort((a, b) => b[1] - a[1])
  const total = items.reduce((s, [, v]) => s + v, 0)
  return `${show(total)}: ${items
    .slice(0, top)
    .map(([n, v]) => `${n.toLowerCase()} ${show(v)}`)
    .join(', ')}`
}

/** Medians over runs of per-run records (a missing name counts 0). */
export function medianRecord(list: readonly Readonly<Record<string, number>>[]): Record<string, number> {
  const names = new Set(list.flatMap((x) => Object.keys(x)))
  return Object.fromEntries([...names].map((n) => [n, median(list.map((x) => x[n] ?? 0))]))
}

export function targetsTable(targets: readonly Target[]): string {
  return markdownTable(
    ['target', 'goal', 'measured', 'met', 'plain commands, no library', 'floor (see Method)'],
    targets.map((t) => [
      t.label,
      t.goal,
      t.measured,
      t.isMet ? 'yes' : `**no**: ${t.missedBy ?? ''}`,
      t.plain ? `${t.plain.measured}${t.plain.isMet ? '' : ', over the bar too'}` : '-',
      t.floor
        ? `${t.floor.name}: ${t.floor.measured}${t.floor.isMet ? '' : ', over the bar in every run'}`
        : '-',
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

/** Commands per job: sent by each process (its counted run), system calls, and run by Redis. */
export function commandsTable(t: ThroughputResult): string {
  return markdownTable(
    [
      'system',
      'concurrency',
      'producer sends per job',
      'worker sends per job',
      'write / read syscalls per job: producer; worker',
      'Redis runs per job (top)',
    ],
    t.rows.map((r: ThroughputRow) => {
      const io = (p: 'producer' | 'worker') => {
        const of = (k: 'writes' | 'reads') => perJobCount(median(r.runs.map((x) => x.syscallsPerJob[p][k])))
        return `${of('writes')} / ${of('reads')}`
      }
      const redis = medianRecord(
        r.runs.map((x) =>
          Object.fromEntries(Object.entries(x.redisCallsPerJob).map(([k, v]) => [k, v.calls])),
        ),
      )
      return [
        SYSTEM_LABEL[r.system],
        String(r.concurrency),
        countList(r.commandsPerJob.producer),
        countList(r.commandsPerJob.worker),
        `${io('producer')}; ${io('worker')}`,
        countList(redis, 6, (v) => v.toFixed(2)),
      ]
    }),
  )
}

/** Where Redis spends its time per job (INFO commandstats usec, median over runs). */
export function redisTimeTable(t: ThroughputResult, concurrency: number): string {
  const rows = t.rows.filter((r) => r.concurrency === concurrency)
  const names = new Set(rows.flatMap((r) => r.runs.flatMap((run) => Object.keys(run.redisCallsPerJob))))
  const usec = (r: ThroughputRow, n: string) =>
    median(r.runs.map((run) => run.redisCallsPerJob[n]?.usec ?? 0))
  const ordered = [...names].sort(
    (a, b) => Math.max(...rows.map((r) => usec(r, b))) - Math.max(...rows.map((r) => usec(r, a))),
  )
  return markdownTable(
    ['command', ...rows.map((r) => `${SYSTEM_LABEL[r.system]} us/job`)],
    ordered.slice(0, 10).map((n) => [n, ...rows.map((r) => usec(r, n).toFixed(2))]),
  )
}

export function latencyTable(l: LatencyResult): string {
  if (l.kind === 'closed-loop') {
    return markdownTable(
      ['system', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'mean ms', 'CPU us/job'],
      l.rows.map((r) => [
        SYSTEM_LABEL[r.system],
        ms(r.p50Us),
        ms(r.p90Us),
        ms(r.p99Us),
        ms(r.maxUs),
        ms(r.meanUs),
        fmt(r.cpuUsPerJob, 0),
      ]),
    )
  }
  return markdownTable(
    [
      'system',
      'achieved jobs/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'max ms',
      'send lag p99 ms',
      "handler's sleep p99 ms",
      'minus handler: p50 / p99 ms',
      'CPU us/job',
    ],
    l.rows.map((r) => [
      SYSTEM_LABEL[r.system],
      fmt(r.jobsPerSecond, 0),
      ms(r.p50Us),
      ms(r.p90Us),
      ms(r.p99Us),
      ms(r.maxUs),
      r.sendLagP99Us ? ms(r.sendLagP99Us) : '-',
      r.handlerP99Ms ? fmt(r.handlerP99Ms, 2) : '-',
      r.overheadP50Us && r.overheadP99Us ? `${ms(r.overheadP50Us)} / ${ms(r.overheadP99Us)}` : '-',
      fmt(r.cpuUsPerJob, 0),
    ]),
  )
}

/** The pool of suite e as measured: the rates and service times the run computed. */
export function routingSettingsTable(r: RoutingResult): string {
  const s = r.settings
  return markdownTable(
    ['', ''],
    [
      [
        'mean service time (timer lateness included), ms',
        `${s.serviceMs.fast.toFixed(1)}; slow worker ${s.serviceMs.slow.toFixed(1)}`,
      ],
      [
        'arrivals (70% of capacity), per second',
        `${s.ratePerSecond}; affinity pool (equal workers) ${s.affinityRatePerSecond}`,
      ],
      ["the slow worker's share of the capacity", `${(s.slowCapacityShare * 100).toFixed(1)}%`],
      ['jobs per run (after warm-up)', `${s.jobs.toLocaleString('en')} (${s.warmupJobs})`],
    ],
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

/** The mixed pool's batch (empty when the results predate it). */
export function mixedTable(r: RoutingResult): string {
  const m = r.mixed
  if (m === undefined) return ''
  const s = m.settings
  return markdownTable(
    ['pool', 'batch', 'makespan s', 'least possible s', 'jobs on the big worker'],
    [
      [
        `concurrency ${s.bigConcurrency} + concurrency ${s.smallConcurrency}`,
        `${s.jobs} jobs of ${s.jobMs / 1_000} s at once`,
        fmt(m.makespanMs, 2, 1 / 1_000),
        (m.idealMs / 1_000).toFixed(2),
        pct(m.bigShare, 0),
      ],
    ],
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
    const name = '**one job: XADD + XREADGROUP + XACK + SET + PUBLISH**'
    rows.push([name, String(p.pipeline), '-', `**${fmt(p.jobsPerSecond, 0)}**`, fmt(p.redisUsPerJob, 2)])
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

/** The run, and the earlier runs whose results it kept for the suites it did not run. */
export function runTable(r: BenchResults): string {
  const runs = [
    { suites: r.suites, command: r.command, startedAt: r.startedAt, machine: r.machine },
    ...(r.carriedOver ?? []),
  ]
  return markdownTable(
    ['suites', 'measured by', 'on', 'at', 'machine'],
    runs.map((x) => [
      x.suites.join(', '),
      `\`${x.command}\``,
      x.startedAt.slice(0, 10),
      `\`${x.machine.commit}\``,
      `${x.machine.cpus} CPUs \`${x.machine.cpuModel}\`, Node ${x.machine.node}, Redis ${x.machine.redis}`,
    ]),
  )
}

export function machineTable(r: BenchResults): string {
  const m = r.machine
  return markdownTable(
    ['', ''],
    [
      ['CPUs', `${m.cpus} (\`nproc\`)`],
      ['CPU model', `\`${m.cpuModel}\` (${m.cpuDetails})`],
      ['memory', `${m.memoryGiB} GiB`],
      ['kernel', m.kernel],
      ['Node', m.node],
      ['Redis', `${m.redis} (redis-benchmark ${m.redisBenchmark})`],
      ['BullMQ', m.bullmq],
      ['ioredis', m.ioredis],
      ['Hedgeyard', `${m.hedgeyard} at \`${m.commit}\``],
      ['dispatch script', `SHA1 \`${r.dispatchScriptSha1.slice(0, 12)}\``],
      [
        'repetitions; runs measured again (most allowed)',
        `${r.repetitions}; ${r.retries.used} (${r.retries.max})`,
      ],
      ['duration', `${Math.round(r.durationSeconds)} s`],
    ],
  )
}

/** The probe and the machine load of each run, summed up per suite. */
export function conditionsTable(r: BenchResults): string {
  type Run = { probe: { cpuLoopMs: number; pingUs: number }; otherCpuLoad: number; stolenCpus?: number }
  const suites: [string, Run[]][] = []
  if (r.throughput) suites.push(['a. throughput', r.throughput.rows.flatMap((x) => x.runs)])
  if (r.closedLoop) suites.push(['b. closed loop', r.closedLoop.rows.flatMap((x) => x.runs)])
  if (r.openLoop) suites.push(['c. open loop', r.openLoop.rows.flatMap((x) => x.runs)])
  if (r.dispatchCost)
    suites.push(['d. dispatch cost', r.dispatchCost.measurements.filter((m) => m.size === 8)])
  if (r.routing) {
    suites.push([
      'e. routing',
      [...r.routing.rows.flatMap((x) => x.runs), ...r.routing.affinity.flatMap((x) => x.runs)],
    ])
  }
  if (r.streaming) suites.push(['f. streaming', r.streaming.rows.flatMap((x) => x.runs)])
  const range = (values: number[], digits: number) => {
    const known = values.filter(Number.isFinite)
    if (known.length === 0) return '-'
    return `${Math.min(...known).toFixed(digits)}-${Math.max(...known).toFixed(digits)}`
  }
  return markdownTable(
    [
      'suite',
      'runs',
      'CPU loop ms',
      'PING us',
      'other processes, CPUs',
      'runs with others > 0.25 CPU',
      'stolen by the hypervisor, CPUs',
    ],
    suites.map(([name, runs]) => [
      name,
      String(runs.length),
      range(
        runs.map((x) => x.probe.cpuLoopMs),
        1,
      ),
      range(
        runs.map((x) => x.probe.pingUs),
        0,
      ),
      range(
        runs.map((x) => x.otherCpuLoad),
        2,
      ),
      String(runs.filter((x) => x.otherCpuLoad > 0.25).length),
      range(
        runs.map((x) => x.stolenCpus ?? Number.NaN),
        2,
      ),
    ]),
  )
}
