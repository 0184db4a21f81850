/** The charts of docs/bench, by file name, from one run's results. */

import type { SystemName } from './measure-run.js'
import { barChart, COLORS, cdfChart, stackedBarChart } from './report-svg.js'
import type { BenchResults } from './results.js'
import type { LatencyResult } from './suite-latency.js'
import { POLICY_LABEL } from './suite-routing.js'
import { SYSTEM_LABEL } from './systems.js'

const SYSTEM_COLOR: Record<SystemName, string> = {
  hedgeyard: COLORS[0],
  bullmq: COLORS[1],
  plain: COLORS[5],
  pubsub: COLORS[4],
  local: COLORS[6],
}
/** The systems of the throughput charts. */
const SYSTEMS = (['hedgeyard', 'bullmq'] as const).map((s) => ({
  name: SYSTEM_LABEL[s],
  color: SYSTEM_COLOR[s],
}))

function latencyCdf(l: LatencyResult, title: string, marksMs: { ms: number; label: string }[]): string {
  return cdfChart({
    title,
    series: l.rows.map((r) => ({
      name: SYSTEM_LABEL[r.system],
      color: SYSTEM_COLOR[r.system],
      points: r.cdf,
    })),
    marksMs,
    note: `all ${l.rows[0]?.runs.length ?? 0} runs of each system together`,
  })
}

export function renderCharts(r: BenchResults): Record<string, string> {
  const out: Record<string, string> = {}
  if (r.throughput) {
    const t = r.throughput
    out['throughput.svg'] = barChart({
      title: `Throughput: ${t.settings.jobs.toLocaleString('en')} no-op jobs in bulk, one worker process`,
      yLabel: 'jobs/s',
      series: SYSTEMS,
      groups: t.settings.concurrencies.map((c) => ({
        label: `concurrency ${c}`,
        bars: t.rows
          .filter((row) => row.concurrency === c)
          .map((row) => ({
            series: SYSTEM_LABEL[row.system],
            ...row.jobsPerSecond,
            value: row.jobsPerSecond.median,
          })),
      })),
      note: 'median of the runs; whiskers: min-max',
    })
    out['cpu-per-job.svg'] = stackedBarChart({
      title: 'CPU per job (us): Redis + producer process + worker process',
      yLabel: 'CPU us per job',
      parts: [
        { name: 'Redis', color: COLORS[4] },
        { name: 'producer (Node)', color: COLORS[2] },
        { name: 'worker (Node)', color: COLORS[3] },
      ],
      bars: t.rows.map((row) => ({
        label: `${SYSTEM_LABEL[row.system]} c=${row.concurrency}`,
        values: [row.redisUsPerJob.median, row.producerUsPerJob.median, row.workerUsPerJob.median],
      })),
      note: 'medians of the runs',
    })
  }
  if (r.closedLoop) {
    out['closed-loop-cdf.svg'] = latencyCdf(
      r.closedLoop,
      'Closed loop: sequential submit and await, no-op job',
      [],
    )
  }
  if (r.openLoop) {
    const handlerMs = Number(r.openLoop.settings.handlerMs ?? 5)
    out['open-loop-cdf.svg'] = latencyCdf(
      r.openLoop,
      `Open loop: ${r.openLoop.settings.ratePerSecond}/s, ${handlerMs} ms handler, from the scheduled send`,
      [
        { ms: handlerMs, label: 'handler' },
        { ms: handlerMs + 1.5, label: 'target p99' },
      ],
    )
  }
  if (r.routing) {
    out['routing-cdf.svg'] = cdfChart({
      title: 'Routing at 70% utilisation, one worker 3x slower',
      series: r.routing.rows.map((row, i) => ({
        name: POLICY_LABEL[row.policy],
        color: COLORS[i] ?? '#888',
        points: row.cdf,
      })),
      note: 'all runs of each policy together',
    })
  }
  if (r.dispatchCost) {
    const colors = [COLORS[0], COLORS[2], COLORS[3]]
    const sizes = [8, 100, 1000]
    out['dispatch-cost.svg'] = barChart({
      title: 'Dispatch: Redis CPU per job against pool size',
      yLabel: 'Redis CPU us per job',
      series: sizes.map((s, i) => ({ name: `${s} workers`, color: colors[i] ?? '#888' })),
      groups: r.dispatchCost.variants.map((v) => ({
        label: v.variant,
        bars: v.bySize.map((s) => ({
          series: `${s.size} workers`,
          ...s.redisCpuUsPerJob,
          value: s.redisCpuUsPerJob.median,
        })),
      })),
      note: 'median of the rounds; whiskers: min-max',
    })
  }
  return out
}
