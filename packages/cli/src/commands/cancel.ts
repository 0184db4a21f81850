import type { Command } from 'commander'
import { CellDispatcher, cancelJob } from 'hedgeyard'
import { type CellsOption, type CommonOptions, withCellsOption, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

/** `hedgeyard cancel <jobId>`: cancels a job from any host. */
export function cancelCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(
      program
        .command('cancel')
        .description('cancel a job from any host: queued copies leave, running ones are aborted'),
    ),
    "look for the job in each of the pool's cells",
  )
    .argument(
      '<jobId>',
      'the job to cancel (a stream or submit prints it; `hedgeyard submit --stream` shows it)',
    )
    .action(async (jobId: string, opts: CommonOptions & CellsOption) => {
      const where = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
      const outcome = opts.cells === undefined ? await cancelJob(where, jobId) : await inCells(opts.cells)
      async function inCells(cells: number) {
        const d = new CellDispatcher({ ...where, cells })
        try {
          return await d.cancel(jobId)
        } finally {
          await d.close()
        }
      }
      if (outcome === 'cancelled') process.stdout.write(`cancelled ${jobId}\n`)
      else if (outcome === 'finished')
        process.stdout.write(`${jobId} has finished already; nothing changed\n`)
      else
        fail('NOT_FOUND', `no job ${jobId} in pool '${opts.pool}' (or it ended and expired); nothing changed`)
    })
}
