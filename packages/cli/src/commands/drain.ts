import type { Command } from 'commander'
import { drainWorkers } from 'hedgeyard'
import { type CommonOptions, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

/** `hedgeyard drain <workerId...>`: drains workers from any host. */
export function drainCommand(program: Command): void {
  withCommonOptions(
    program.command('drain').description('drain workers from any host: they finish their jobs and leave'),
  )
    .argument('<workerIds...>', 'ids of the workers to drain (see `hedgeyard inspect`)')
    .action(async (workerIds: string[], opts: CommonOptions) => {
      const found = await drainWorkers({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix }, workerIds)
      for (const id of found) process.stdout.write(`draining ${id}\n`)
      const missing = workerIds.filter((id) => !found.includes(id))
      if (missing.length > 0)
        fail('INVALID_ARGUMENT', `no such worker in pool '${opts.pool}': ${missing.join(', ')}`)
    })
}
