import type { Command } from 'commander'
import { inspectPool, inspectProducers } from 'hedgeyard'
import { type CommonOptions, withCommonOptions } from '../options.js'
import { table } from '../output.js'

/** `hedgeyard inspect`'s exit code when no worker of the pool is alive (none registered, or every lease ended). */
export const NO_LIVE_WORKER = 3

/** `hedgeyard inspect`: the pool's workers and producers with their metrics, as tables or JSON. */
export function inspectCommand(program: Command): void {
  withCommonOptions(
    program.command('inspect').description("show the pool's workers and producers with their metrics"),
  )
    .option('--json', 'print JSON instead of tables')
    .action(async (opts: CommonOptions & { json?: boolean }) => {
      const ref = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
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
        const rows = workers.map((w) => [
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
        ])
        const headers = [
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
