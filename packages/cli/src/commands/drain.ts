import type { Command } from 'commander'
import { drainWorkers, inspectPool } from 'hedgeyard'
import { type CommonOptions, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

/** `hedgeyard drain <workerId...>`: drains workers from any host. */
export function drainCommand(program: Command): void {
  withCommonOptions(
    program.command('drain').description('drain workers from any host: they finish their jobs and leave'),
  )
    .argument('<workerIds...>', 'ids of the workers to drain (see `hedgeyard inspect`)')
    .action(async (workerIds: string[], opts: CommonOptions) => {
      const ref = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
      // A worker whose lease ended does not drain (nothing of it runs to notice): say so, and leave it.
      const dead = new Set((await inspectPool(ref)).filter((w) => !w.alive).map((w) => w.workerId))
      const live = workerIds.filter((id) => !dead.has(id))
      const found = live.length > 0 ? await drainWorkers(ref, live) : []
      for (const id of found) process.stdout.write(`draining ${id}\n`)
      const missing = live.filter((id) => !found.includes(id))
      const problems = [
        ...(missing.length > 0 ? [`no such worker in pool '${opts.pool}': ${missing.join(', ')}`] : []),
        ...[...dead]
          .filter((id) => workerIds.includes(id))
          .map(
            (id) =>
              `worker ${id} is not alive (its lease ended): nothing of it runs to drain; a live worker's rescue moves its jobs`,
          ),
      ]
      if (problems.length > 0) fail('INVALID_ARGUMENT', problems.join('; '))
    })
}
