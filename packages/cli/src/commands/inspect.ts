import type { Command } from 'commander'
import { inspectCells, inspectPool, inspectProducers, type WorkerMetrics } from 'hedgeyard'
import { type CellsOption, type CommonOptions, withCellsOption, withCommonOptions } from '../options.js'
import { table } from '../output.js'

/** `hedgeyard inspect`'s exit code when no worker of the pool is alive (none registered, or every lease ended). */
export const NO_LIVE_WORKER = 3

/** The columns of a worker, in the pool's table and (after its cell) in the cells' table. */
const WORKER_HEADERS = [
  'worker',
  'host',
  'pid',
  'alive',
  'state',
  'inflight',
  'queued',
  'capacity',
  'concurrency',
  'processed',
  'errors',
  'fails in a row',
]

/** A worker's row: its state tells a cooldown or an open breaker, with the time left. */
function workerRow(w: WorkerMetrics): (string | number)[] {
  return [
    w.workerId,
    w.host,
    w.pid,
    w.alive ? 'yes' : 'NO',
    w.breaker === 'open'
      ? `breaker open ${(w.breakerMs / 1000).toFixed(1)}s`
      : w.breaker === 'half-open'
        ? 'breaker half-open'
        : w.state === 'cooling'
          ? `cooling ${(w.coolingMs / 1000).toFixed(1)}s`
          : w.state,
    w.inflight,
    w.queueLen,
    w.capacity,
    w.concurrency,
    w.processed,
    w.errors,
    w.consecutiveFailures,
  ]
}

/** `hedgeyard inspect`: the pool's workers and producers with their metrics, as tables or JSON. */
export function inspectCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(
      program.command('inspect').description("show the pool's workers and producers with their metrics"),
    ),
    'show the logical pool and each of its cells',
  )
    .option('--json', 'print JSON instead of tables')
    .action(async (opts: CommonOptions & CellsOption & { json?: boolean }) => {
      const ref = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
      if (opts.cells !== undefined) {
        await printCells(ref, opts.cells, opts.json === true)
        return
      }
      const [workers, producers] = await Promise.all([inspectPool(ref), inspectProducers(ref)])
      // The exit code is a health check: 0 while a worker is alive, NO_LIVE_WORKER otherwise.
      if (!workers.some((w) => w.alive)) process.exitCode = NO_LIVE_WORKER
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ pool: opts.pool, workers, producers }, null, 2)}\n`)
        return
      }
      if (workers.length === 0) {
        process.stdout.write(`pool '${opts.pool}' has no registered workers\n`)
      } else {
        const rows = workers.map(workerRow)
        const headers = WORKER_HEADERS
        process.stdout.write(`pool '${opts.pool}': ${workers.length} workers\n${table(headers, rows)}\n`)
      }
      if (producers.length > 0) {
        // Every counter --json has (reportedAt is the window's filter, not a counter).
        const ms = (v: number | undefined) => (v === undefined ? '-' : Math.round(v))
        const rows = producers.map((p) => [
          p.producerId,
          p.submitted,
          p.succeeded,
          p.failed,
          p.saturated,
          p.rateLimited,
          p.throttled,
          p.affinityHits,
          p.affinityMisses,
          p.hedgesSent,
          p.hedgesWon,
          p.hedgesCancelled,
          p.hedgesDenied,
          p.retriesSent,
          p.autoDelayMs,
          ms(p.latencyP50Ms),
          ms(p.latencyP99Ms),
        ])
        const headers = [
          'producer',
          'submitted',
          'ok',
          'failed',
          'saturated',
          'rate limited',
          'throttled',
          'affinity hits',
          'misses',
          'hedges',
          'won',
          'cancelled',
          'denied',
          'retries',
          'auto delay ms',
          'p50 ms',
          'p99 ms',
        ]
        process.stdout.write(
          `\n${producers.length} producers (last report within 30 s)\n${table(headers, rows)}\n`,
        )
      }
    })
}

/** `inspect --cells`: one line per cell, then every worker with its cell (JSON: each cell whole). */
async function printCells(
  ref: { redis: CommonOptions['redis']; pool: string; prefix: string },
  cells: number,
  isJson: boolean,
) {
  const view = await inspectCells({ ...ref, cells })
  const workers = view.flatMap((c) => c.workers.map((w) => ({ ...w, cell: c.cell })))
  if (!workers.some((w) => w.alive)) process.exitCode = NO_LIVE_WORKER
  if (isJson) {
    process.stdout.write(`${JSON.stringify({ pool: ref.pool, cells: view }, null, 2)}\n`)
    return
  }
  const sum = (ws: typeof workers, read: (w: (typeof workers)[number]) => number) =>
    ws.reduce((a, w) => a + read(w), 0)
  const cellRows = view.map((c) => {
    const live = c.workers.filter((w) => w.alive)
    return [
      c.cell,
      c.pool,
      live.length,
      sum(live as typeof workers, (w) => w.inflight),
      sum(live as typeof workers, (w) => w.queueLen),
      sum(live as typeof workers, (w) => w.capacity),
      sum(c.workers as typeof workers, (w) => w.processed),
      sum(c.workers as typeof workers, (w) => w.errors),
      c.producers.length,
      c.producers.reduce((a, p) => a + p.submitted, 0),
    ]
  })
  const cellHeaders = [
    'cell',
    'pool',
    'live workers',
    'inflight',
    'queued',
    'capacity',
    'processed',
    'errors',
    'producers',
    'submitted',
  ]
  const live = workers.filter((w) => w.alive).length
  process.stdout.write(
    `pool '${ref.pool}': ${cells} cells, ${live} live workers\n${table(cellHeaders, cellRows)}\n`,
  )
  if (workers.length === 0) return
  const rows = workers.map((w) => [w.cell, ...workerRow(w)])
  const headers = ['cell', ...WORKER_HEADERS]
  process.stdout.write(`\n${table(headers, rows)}\n`)
}
