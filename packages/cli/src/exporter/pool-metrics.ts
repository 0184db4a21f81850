import type { Limiter, PoolSnapshot, PoolView, WorkerMetrics } from 'hedgeyard'
import { Counter, collectDefaultMetrics, Gauge, Registry } from 'prom-client'

/**
 * A pool the exporter reads: `name` is the pool read from Redis; `pool` and `cell` are its labels.
 * An ordinary pool is labelled with its name and `cell=""`; cell `i` of a logical pool (`chat.i`,
 * docs/cells.md) with the logical pool and the index (`pool="chat",cell="i"`), as the library's
 * own metrics label it.
 */
export interface ExportedPool {
  name: string
  pool: string
  cell: string
  view: PoolView
}

/** One pool as the exporter last read it: its snapshot, or why it could not be read. */
export interface PoolReading {
  source: ExportedPool
  snapshot?: PoolSnapshot
  error?: unknown
}

/** The exporter's metrics: a registry whose values come from a fresh reading of the pools at each scrape. */
export interface PoolMetrics {
  registry: Registry
  /** Reads every pool now and renders the Prometheus text format (concurrent scrapes share one reading). */
  scrape(): Promise<string>
}

/** Options of {@link createPoolMetrics}. */
export interface PoolMetricsOptions {
  /** How long one pool's reading may take before the scrape reports it down. @defaultValue 5000 */
  readTimeoutMs?: number
  /** Also the exporter process's own metrics (`process_cpu_seconds_total`, ...). @defaultValue true */
  hasProcessMetrics?: boolean
  /** Told when a pool's reading starts or stops failing (not at every failed scrape), with the pool read. */
  onPoolStatus?: (pool: string, error: unknown) => void
}

/** Defaults of {@link createPoolMetrics}. */
export const POOL_METRICS_DEFAULTS = Object.freeze({ readTimeoutMs: 5_000, hasProcessMetrics: true })

/** The values of `hedgeyard_worker_state`'s `state` label: every worker has one series of each, one of them 1. */
export const WORKER_STATES = ['active', 'cooling', 'draining', 'other'] as const

/** A number read from Redis as a metric value: a hostile or missing field counts as 0. */
function value(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0
}

/**
 * Makes the exporter's registry over the given pools. Every metric is computed in its `collect()`
 * from the readings taken when the scrape began; series of workers that left vanish at the next
 * scrape. Labels are the pool, its cell ('' for an ordinary pool) and, per worker, its id: never
 * job, session or producer ids.
 */
export function createPoolMetrics(
  views: readonly ExportedPool[],
  options: PoolMetricsOptions = {},
): PoolMetrics {
  const o = { ...POOL_METRICS_DEFAULTS, ...options }
  const registry = new Registry()
  if (o.hasProcessMetrics) collectDefaultMetrics({ register: registry })
  let readings: PoolReading[] = []
  let startedAt = 0
  const isDown = new Set<string>()

  /** The pools read at this scrape, each with its labels. */
  const ok = () =>
    readings.flatMap((r) =>
      r.snapshot ? [{ at: { pool: r.source.pool, cell: r.source.cell }, s: r.snapshot }] : [],
    )
  const workers = () => ok().flatMap(({ at, s }) => s.workers.map((w) => ({ at, w })))

  /** A gauge (or counter) with one value per pool, per worker or per limiter, set at collect time. */
  function pool(name: string, help: string, of: (s: PoolSnapshot) => number): void {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'cell'],
      registers: [registry],
      collect() {
        this.reset()
        for (const { at, s } of ok()) this.set(at, value(of(s)))
      },
    })
  }
  function perWorker(name: string, help: string, of: (w: WorkerMetrics) => number): void {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'cell', 'worker'],
      registers: [registry],
      collect() {
        this.reset()
        for (const { at, w } of workers()) this.set({ ...at, worker: w.workerId }, value(of(w)))
      },
    })
  }
  function perWorkerCounter(name: string, help: string, of: (w: WorkerMetrics) => number): void {
    new Counter({
      name,
      help,
      labelNames: ['pool', 'cell', 'worker'],
      registers: [registry],
      collect() {
        // A counter has no set(): start from nothing and add what the worker's hash holds.
        this.reset()
        for (const { at, w } of workers()) this.inc({ ...at, worker: w.workerId }, value(of(w)))
      },
    })
  }
  function perLimiter(name: string, help: string, of: (l: Limiter) => number): void {
    new Gauge({
      name,
      help,
      labelNames: ['pool', 'cell', 'limiter'],
      registers: [registry],
      collect() {
        this.reset()
        for (const { at, s } of ok()) {
          for (const limiter of ['rate', 'cost'] as const) {
            const l = s.limits[limiter]
            if (l) this.set({ ...at, limiter }, value(of(l)))
          }
        }
      },
    })
  }

  new Gauge({
    name: 'hedgeyard_pool_up',
    help: 'Whether the exporter could read the pool from Redis at this scrape (1) or not (0)',
    labelNames: ['pool', 'cell'],
    registers: [registry],
    collect() {
      this.reset()
      for (const { source, snapshot } of readings)
        this.set({ pool: source.pool, cell: source.cell }, snapshot ? 1 : 0)
    },
  })
  pool(
    'hedgeyard_workers_registered',
    'Workers registered in the pool, alive or not',
    (s) => s.workers.length,
  )
  pool(
    'hedgeyard_workers_alive',
    'Workers of the pool whose lease has not expired',
    (s) => s.workers.filter((w) => w.alive).length,
  )
  pool('hedgeyard_dead_letters', "Entries in the pool's dead-letter stream", (s) => s.deadLetters)
  pool(
    'hedgeyard_producers_reporting',
    'Producers (dispatchers) of the pool that reported their stats in the last 30 s',
    (s) => s.producers.length,
  )
  perLimiter(
    'hedgeyard_pool_quota_limit',
    "The pool's quota per period: requests for limiter=rate, cost units for limiter=cost (only when set)",
    (l) => l.limit,
  )
  perLimiter(
    'hedgeyard_pool_quota_period_seconds',
    "The period of the pool's quota",
    (l) => l.periodMs / 1_000,
  )
  perLimiter(
    'hedgeyard_pool_quota_burst',
    "Units of the pool's quota that may go at once",
    (l) => l.burst ?? 1,
  )
  perWorker('hedgeyard_worker_alive', "Whether the worker's lease has not expired (1) or has (0)", (w) =>
    w.alive ? 1 : 0,
  )
  new Gauge({
    name: 'hedgeyard_worker_state',
    help: "The worker's state: 1 for the current one (active, cooling, draining or other), 0 for the rest",
    labelNames: ['pool', 'cell', 'worker', 'state'],
    registers: [registry],
    collect() {
      this.reset()
      for (const { at, w } of workers()) {
        const current = (WORKER_STATES as readonly string[]).includes(w.state) ? w.state : 'other'
        for (const state of WORKER_STATES)
          this.set({ ...at, worker: w.workerId, state }, state === current ? 1 : 0)
      }
    },
  })
  perWorker(
    'hedgeyard_worker_cooldown_seconds',
    'Time left before a cooling worker (its upstream answered 429) takes jobs again; 0 when not cooling',
    (w) => w.coolingMs / 1_000,
  )
  perWorker(
    'hedgeyard_worker_breaker_open',
    "Whether the worker's breaker is open (1: out of dispatch after consecutive failures) or not (0)",
    (w) => (w.breaker === 'open' ? 1 : 0),
  )
  perWorker('hedgeyard_worker_inflight', 'Jobs the worker has read and is running', (w) => w.inflight)
  perWorker('hedgeyard_worker_queued', "Jobs waiting in the worker's stream, not read yet", (w) => w.queueLen)
  perWorker(
    'hedgeyard_worker_capacity',
    'The most jobs the worker holds at once (its concurrency plus its queue capacity)',
    (w) => w.capacity,
  )
  perWorker('hedgeyard_worker_concurrency', 'Jobs the worker runs at once', (w) => w.concurrency)
  perWorkerCounter(
    'hedgeyard_worker_processed_total',
    'Jobs whose handler finished on the worker, successfully or not (since it registered)',
    (w) => w.processed,
  )
  perWorkerCounter(
    'hedgeyard_worker_errors_total',
    'Jobs whose handler failed on the worker (since it registered)',
    (w) => w.errors,
  )
  // Registered last: its collect() runs after the others', so it covers reading and building them.
  new Gauge({
    name: 'hedgeyard_exporter_scrape_duration_seconds',
    help: 'Time the exporter took to read the pools and compute the metrics of this scrape',
    registers: [registry],
    collect() {
      this.set((performance.now() - startedAt) / 1_000)
    },
  })

  const read = async (source: ExportedPool): Promise<PoolReading> => {
    const { name, view } = source
    let timer: NodeJS.Timeout | undefined
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`reading pool '${name}' took more than ${o.readTimeoutMs} ms`)),
          o.readTimeoutMs,
        )
      })
      const snapshot = await Promise.race([view.snapshot(), timeout])
      if (isDown.delete(name)) o.onPoolStatus?.(name, undefined)
      return { source, snapshot }
    } catch (error) {
      if (!isDown.has(name)) {
        isDown.add(name)
        o.onPoolStatus?.(name, error)
      }
      return { source, error }
    } finally {
      clearTimeout(timer)
    }
  }
  let current: Promise<string> | undefined
  const scrape = async () => {
    startedAt = performance.now()
    readings = await Promise.all(views.map(read))
    return registry.metrics()
  }
  return {
    registry,
    scrape() {
      // A second scraper (an HA pair of Prometheus servers) arriving mid-scrape gets the same answer.
      current ??= scrape().finally(() => {
        current = undefined
      })
      return current
    },
  }
}
