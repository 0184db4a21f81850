import type { HealthProbe } from './health-probe.js'
import { markdownTable } from './stats.js'

/** The rows of the table, in order. */
export const ROW_NAMES = ['no hedge', 'hedge at p95', 'auto + budget', 'tied'] as const
export type RowName = (typeof ROW_NAMES)[number]

/** One row of the table: one way of submitting, at one load. */
export interface RowResult {
  /** Offered load as a share of the pool's measured capacity (0.3, 0.8). */
  utilisation: number
  row: RowName
  /** The hedge delay this row used, as shown in the table. */
  delay: string
  ratePerSec: number
  requests: number
  succeeded: number
  errors: Record<string, number>
  p50Ms: number
  p95Ms: number
  p99Ms: number
  p999Ms: number
  maxMs: number
  /** Stream entries added (XADD calls in `INFO commandstats`): every copy queued, tied ones included. */
  copiesQueued: number
  /** (copiesQueued - requests) / requests. */
  extraRequests: number
  /** Handler runs in the worker processes. */
  runs: number
  /** Handler busy time (ms) summed over every run, until it finished or its signal aborted it. */
  busyMs: number
  /** busyMs / busyMs of the no-hedge row at the same load, minus 1. */
  extraWork: number
  /** Runs ended by their signal (a losing copy cancelled while running), and their busy time. */
  abortedRuns: number
  abortedBusyMs: number
  /** abortedBusyMs / busyMs of the no-hedge row: work spent on copies that were then cancelled. */
  abortedWork: number
  hedgesSent: number
  hedgesWon: number
  hedgesCancelled: number
  hedgesDenied: number
  retriesSent: number
  autoDelayMs: number
  durationMs: number
  maxSendLagMs: number
  probe: HealthProbe
  /** CPUs kept busy by this benchmark's processes (producer, workers, Redis) during the row. */
  ownCpuLoad: number
  /** CPU time per measured request of the producer (this process), the worker processes and Redis (us). */
  cpuUsPerRequest: { producer: number; workers: number; redis: number }
  /** CPUs kept busy by processes other than this benchmark's (its producer, workers, Redis) during the row. */
  otherCpuLoad: number
}

/** One target of issue #3 item 9, checked. */
export interface TargetCheck {
  utilisation: number
  row: RowName
  target: string
  measured: string
  isMet: boolean
}

function ms(x: number): string {
  if (!Number.isFinite(x)) return '-'
  return x >= 100 ? x.toFixed(0) : x.toFixed(1)
}

function pct(x: number): string {
  return Number.isFinite(x) ? `${(x * 100).toFixed(1)}%` : '-'
}

/** The table of the issue: p50, p99, p99.9, extra requests, extra work. */
export function mainTable(rows: readonly RowResult[]): string {
  return markdownTable(
    ['load', 'row', 'delay', 'p50 ms', 'p99 ms', 'p99.9 ms', 'extra requests', 'extra work'],
    rows.map((r) => [
      `${Math.round(r.utilisation * 100)}%`,
      r.row,
      r.delay,
      ms(r.p50Ms),
      ms(r.p99Ms),
      ms(r.p999Ms),
      pct(r.extraRequests),
      pct(r.extraWork),
    ]),
  )
}

/** Where the figures come from: the dispatcher's counters, the workers' runs, the machine. */
export function detailTable(rows: readonly RowResult[]): string {
  return markdownTable(
    [
      'load',
      'row',
      'req/s',
      'requests',
      'failed',
      'p95 ms',
      'max ms',
      'hedges sent/won/cancelled/denied',
      'runs',
      'aborted runs (their work)',
      'CPU bench/other',
    ],
    rows.map((r) => [
      `${Math.round(r.utilisation * 100)}%`,
      r.row,
      r.ratePerSec.toFixed(0),
      String(r.requests),
      String(r.requests - r.succeeded),
      ms(r.p95Ms),
      ms(r.maxMs),
      `${r.hedgesSent}/${r.hedgesWon}/${r.hedgesCancelled}/${r.hedgesDenied}`,
      String(r.runs),
      `${r.abortedRuns} (${pct(r.abortedWork)})`,
      `${r.ownCpuLoad.toFixed(2)}/${r.otherCpuLoad.toFixed(2)}`,
    ]),
  )
}

/**
 * The targets of the issue. At the low load, hedging rows must cut p99 by 5x and p99.9 by 8x
 * for at most 6% extra requests. At the high load, every row keeps the median within 10% of no
 * hedge, and the budgeted row's extra requests stay within its budget (ratio x requests + burst).
 */
export function checkTargets(
  rows: readonly RowResult[],
  lowLoad: number,
  highLoad: number,
  budget: { ratio: number; burst: number },
): TargetCheck[] {
  const checks: TargetCheck[] = []
  const base = (u: number) => rows.find((r) => r.utilisation === u && r.row === 'no hedge')
  const low = base(lowLoad)
  const high = base(highLoad)
  for (const r of rows) {
    if (r.row === 'no hedge') continue
    const add = (target: string, measured: string, isMet: boolean) =>
      checks.push({ utilisation: r.utilisation, row: r.row, target, measured, isMet })
    if (r.utilisation === lowLoad && low) {
      const p99 = low.p99Ms / r.p99Ms
      const p999 = low.p999Ms / r.p999Ms
      add('p99 >= 5x lower', `${p99.toFixed(1)}x`, p99 >= 5)
      add('p99.9 >= 8x lower', `${p999.toFixed(1)}x`, p999 >= 8)
      add('extra requests <= 6%', pct(r.extraRequests), r.extraRequests <= 0.06)
    }
    if (r.utilisation === highLoad && high) {
      const drift = r.p50Ms / high.p50Ms - 1
      add('p50 within 10% of no hedge', `${drift >= 0 ? '+' : ''}${pct(drift)}`, Math.abs(drift) <= 0.1)
      if (r.row === 'auto + budget') {
        const limit = budget.ratio + budget.burst / r.requests
        add(`extra requests <= budget (${pct(limit)})`, pct(r.extraRequests), r.extraRequests <= limit)
      }
    }
  }
  return checks
}

export function checksTable(checks: readonly TargetCheck[]): string {
  return markdownTable(
    ['load', 'row', 'target', 'measured', 'result'],
    checks.map((c) => [
      `${Math.round(c.utilisation * 100)}%`,
      c.row,
      c.target,
      c.measured,
      c.isMet ? 'met' : 'MISSED',
    ]),
  )
}
