import type { Command } from 'commander'
import { inspectPool } from 'switchyard'
import { type CommonOptions, withCommonOptions } from '../options.js'
import { table } from '../output.js'

/** `switchyard inspect`: the pool's workers and their metrics, as a table or JSON. */
export function inspectCommand(program: Command): void {
  withCommonOptions(program.command('inspect').description("show the pool's workers and their metrics"))
    .option('--json', 'print JSON instead of a table')
    .action(async (opts: CommonOptions & { json?: boolean }) => {
      const workers = await inspectPool({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix })
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ pool: opts.pool, workers }, null, 2)}\n`)
        return
      }
      if (workers.length === 0) {
        process.stdout.write(`pool '${opts.pool}' has no registered workers\n`)
        return
      }
      const rows = workers.map((w) => [
        w.workerId,
        w.host,
        w.pid,
        w.alive ? 'yes' : 'NO',
        w.state,
        w.inflight,
        w.queueLen,
        w.capacity,
        w.concurrency,
        w.processed,
        w.errors,
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
      ]
      process.stdout.write(`pool '${opts.pool}': ${workers.length} workers\n${table(headers, rows)}\n`)
    })
}
