import type { Command } from 'commander'
import { forgetDeadWorkers } from 'hedgeyard'
import { type CommonOptions, intOption, withCommonOptions } from '../options.js'

/** `hedgeyard pool forget-dead`: the upkeep of a pool as a whole. */
export function poolCommand(program: Command): void {
  const pool = program.command('pool').description('upkeep of a pool: forget its dead workers')
  withCommonOptions(
    pool
      .command('forget-dead')
      .description(
        'remove the workers whose lease ended: their jobs move to live workers, or to the dead letters when none is alive',
      ),
  )
    .option(
      '--dead-letter-cap <n>',
      'most entries the dead-letter stream keeps',
      intOption('--dead-letter-cap'),
    )
    .option(
      '--result-ttl-ms <ms>',
      'how long a DEAD_LETTERED answer is kept for its caller',
      intOption('--result-ttl-ms'),
    )
    .option('--json', 'print JSON')
    .action(
      async (opts: CommonOptions & { deadLetterCap?: number; resultTtlMs?: number; json?: boolean }) => {
        const done = await forgetDeadWorkers({
          redis: opts.redis,
          pool: opts.pool,
          prefix: opts.prefix,
          ...(opts.deadLetterCap !== undefined ? { deadLetterCap: opts.deadLetterCap } : {}),
          ...(opts.resultTtlMs !== undefined ? { resultTtlMs: opts.resultTtlMs } : {}),
        })
        if (opts.json) {
          process.stdout.write(`${JSON.stringify(done)}\n`)
          return
        }
        process.stdout.write(
          `pool '${opts.pool}': ${done.removed} dead workers removed; their jobs: ${done.moved} moved to live workers, ` +
            `${done.lettered} dead-lettered, ${done.dropped} dropped (their callers had TIMEOUT or WORKER_LOST)\n`,
        )
        if (done.waiting.length > 0) {
          process.stdout.write(
            `still registered: ${done.waiting.join(', ')}: no live worker has room for their jobs yet; ` +
              'the live workers move them as room frees\n',
          )
        }
      },
    )
}
