import type { Command } from 'commander'
import { cancelJob } from 'hedgeyard'
import { type CommonOptions, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

/** `hedgeyard cancel <jobId>`: cancels a job from any host. */
export function cancelCommand(program: Command): void {
  withCommonOptions(
    program
      .command('cancel')
      .description('cancel a job from any host: queued copies leave, running ones are aborted'),
  )
    .argument(
      '<jobId>',
      'the job to cancel (a stream or submit prints it; `hedgeyard submit --stream` shows it)',
    )
    .action(async (jobId: string, opts: CommonOptions) => {
      const outcome = await cancelJob({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix }, jobId)
      if (outcome === 'cancelled') process.stdout.write(`cancelled ${jobId}\n`)
      else if (outcome === 'finished')
        process.stdout.write(`${jobId} has finished already; nothing changed\n`)
      else
        fail('NOT_FOUND', `no job ${jobId} in pool '${opts.pool}' (or it ended and expired); nothing changed`)
    })
}
