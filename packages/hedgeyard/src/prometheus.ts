/**
 * Prometheus metrics of a Hedgeyard process, through prom-client (an optional peer dependency):
 * `import { prometheusMetrics } from 'hedgeyard/prometheus'`, then pass the result as the `metrics`
 * option of a Dispatcher and of startWorkers, and serve `metrics.registry.metrics()`.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { MetricsSink, WorkerGauge } from './observe/metrics-sink.js'
import type { DispatcherStats } from './producer/dispatcher.js'

/** Buckets of the duration histograms, in seconds: 1 ms to 2 min. */
export const DURATION_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
]

/** A metrics sink that keeps prom-client metrics, and the registry they are in. */
export interface PrometheusMetrics extends MetricsSink {
  readonly registry: Registry
}

/** Options of {@link prometheusMetrics}. */
export interface PrometheusOptions {
  /** The registry to register in (e.g. one that also holds the process's default metrics). @defaultValue a new one */
  registry?: Registry
}

/** A producer counter: the dispatcher stat it reads, its name and help. */
const PRODUCER_COUNTERS: readonly [keyof DispatcherStats, string, string][] = [
  ['hedgesSent', 'hedgeyard_hedges_sent_total', 'Hedge copies sent after their delay'],
  ['hedgesWon', 'hedgeyard_hedges_won_total', 'Hedged submits won by a copy other than the first'],
  ['hedgesCancelled', 'hedgeyard_hedges_cancelled_total', 'Copies still out when another copy won'],
  [
    'hedgesDenied',
    'hedgeyard_hedges_denied_total',
    'Hedges and retries not sent because the budget was spent',
  ],
  ['retriesSent', 'hedgeyard_retries_total', 'Copies sent after a retryable failure'],
  ['saturated', 'hedgeyard_saturated_total', 'Dispatch attempts that found every worker full'],
  ['rateLimited', 'hedgeyard_rate_limited_total', "Dispatch attempts the pool's quota held back"],
  ['throttled', 'hedgeyard_throttled_total', 'Requests refused by the adaptive throttle'],
  ['affinityHits', 'hedgeyard_affinity_hits_total', 'Submits with a session whose worker binding was used'],
]

/**
 * Makes the metrics (prefix `hedgeyard_`, seconds, `_total` counters, labels `pool`, `cell`,
 * `outcome` and for per-worker gauges `worker`; never a job or session id). A cell of a pool made
 * with `cells` (docs/cells.md) is labelled with the logical pool and the cell's index
 * (`pool="chat",cell="3"`); any other pool has `cell=""`:
 *
 * - `hedgeyard_submits_total{pool,outcome}`, `hedgeyard_submit_duration_seconds{pool}`: producers;
 * - `hedgeyard_jobs_total{pool,outcome}`, `hedgeyard_job_duration_seconds{pool}`,
 *   `hedgeyard_queue_wait_seconds{pool}`: the workers of this process;
 * - hedges sent/won/cancelled/denied, retries, saturated, rate limited, throttled (producers);
 * - `hedgeyard_rescued_jobs_total`, `hedgeyard_dead_letters_total`, and per worker
 *   `hedgeyard_worker_inflight`, `hedgeyard_worker_capacity`, `hedgeyard_worker_concurrency`.
 */
export function prometheusMetrics(options: PrometheusOptions = {}): PrometheusMetrics {
  const registry = options.registry ?? new Registry()
  const registers = [registry]
  const producers = new Map<string, { pool: string; stats: () => DispatcherStats }>()
  /** Counters of closed producers, by pool, so totals never go down. */
  const closed = new Map<string, DispatcherStats>()
  const groups = new Map<string, { pool: string; gauges: () => WorkerGauge[] }>()
  /** The logical pool and index of each cell's pool (poolCells); other pools have cell ''. */
  const cells = new Map<string, { pool: string; cell: string }>()
  const labels = (pool: string) => cells.get(pool) ?? { pool, cell: '' }

  const submits = new Counter({
    name: 'hedgeyard_submits_total',
    help: 'Submits and streams settled at their caller, by outcome (ok or the error code)',
    labelNames: ['pool', 'cell', 'outcome'],
    registers,
  })
  const submitDuration = new Histogram({
    name: 'hedgeyard_submit_duration_seconds',
    help: 'Time from a submit to its result, at the caller',
    labelNames: ['pool', 'cell'],
    buckets: DURATION_BUCKETS,
    registers,
  })
  const jobs = new Counter({
    name: 'hedgeyard_jobs_total',
    help: "Jobs this process's workers finished, by outcome (ok, the error code, or skipped)",
    labelNames: ['pool', 'cell', 'outcome'],
    registers,
  })
  const jobDuration = new Histogram({
    name: 'hedgeyard_job_duration_seconds',
    help: "Time a job's handler ran",
    labelNames: ['pool', 'cell'],
    buckets: DURATION_BUCKETS,
    registers,
  })
  const queueWait = new Histogram({
    name: 'hedgeyard_queue_wait_seconds',
    help: "Time from a job's dispatch to its handler's start (Redis time)",
    labelNames: ['pool', 'cell'],
    buckets: DURATION_BUCKETS,
    registers,
  })
  const rescued = new Counter({
    name: 'hedgeyard_rescued_jobs_total',
    help: 'Jobs of dead workers this process moved to live workers',
    labelNames: ['pool', 'cell'],
    registers,
  })
  const deadLetters = new Counter({
    name: 'hedgeyard_dead_letters_total',
    help: 'Jobs this process moved to the dead letters',
    labelNames: ['pool', 'cell'],
    registers,
  })
  for (const [stat, name, help] of PRODUCER_COUNTERS) {
    new Counter({
      name,
      help,
      labelNames: ['pool', 'cell'],
      registers,
      collect() {
        this.reset()
        for (const [pool, total] of producerTotals(stat)) this.inc(labels(pool), total)
      },
    })
  }
  const perWorker = (name: string, help: string, read: (g: WorkerGauge) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'cell', 'worker'],
      registers,
      collect() {
        this.reset()
        for (const { pool, gauges } of groups.values()) {
          for (const g of gauges()) this.set({ ...labels(pool), worker: g.workerId }, read(g))
        }
      },
    })
  perWorker('hedgeyard_worker_inflight', 'Jobs a worker of this process is running', (g) => g.inflight)
  perWorker(
    'hedgeyard_worker_capacity',
    'Most jobs a worker of this process holds at once',
    (g) => g.capacity,
  )
  perWorker(
    'hedgeyard_worker_concurrency',
    'Jobs a worker of this process runs at once',
    (g) => g.concurrency,
  )

  /** One stat summed over open and closed producers, by pool. */
  function producerTotals(stat: keyof DispatcherStats): Map<string, number> {
    const out = new Map<string, number>()
    for (const [pool, stats] of closed) out.set(pool, stats[stat])
    for (const { pool, stats } of producers.values()) out.set(pool, (out.get(pool) ?? 0) + stats()[stat])
    return out
  }

  return {
    registry,
    producerOpened(pool, producerId, stats) {
      producers.set(producerId, { pool, stats })
    },
    producerClosed(pool, producerId, final) {
      producers.delete(producerId)
      const sum = closed.get(pool)
      if (sum === undefined) closed.set(pool, { ...final })
      else for (const [stat] of PRODUCER_COUNTERS) sum[stat] += final[stat]
    },
    poolCells(pool, cellPools) {
      for (const [i, cellPool] of cellPools.entries()) cells.set(cellPool, { pool, cell: String(i) })
    },
    submitSettled(pool, outcome, seconds) {
      submits.inc({ ...labels(pool), outcome })
      if (seconds !== undefined) submitDuration.observe(labels(pool), seconds)
    },
    workersStarted(pool, groupId, gauges) {
      groups.set(`${pool}\n${groupId}`, { pool, gauges })
    },
    workersStopped(pool, groupId) {
      groups.delete(`${pool}\n${groupId}`)
    },
    jobFinished(pool, _workerId, outcome, seconds, queueSeconds) {
      jobs.inc({ ...labels(pool), outcome })
      if (outcome === 'skipped') return
      jobDuration.observe(labels(pool), seconds)
      if (queueSeconds !== undefined) queueWait.observe(labels(pool), queueSeconds)
    },
    rescued(pool, moved, lettered) {
      if (moved > 0) rescued.inc(labels(pool), moved)
      if (lettered > 0) deadLetters.inc(labels(pool), lettered)
    },
    deadLettered(pool, count) {
      deadLetters.inc(labels(pool), count)
    },
  }
}

export type { MetricsSink, WorkerGauge } from './observe/metrics-sink.js'
