import type { Command } from 'commander'
import { CellDispatcher, getJob, type JobState } from 'hedgeyard'
import { type CellsOption, type CommonOptions, withCellsOption, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

/** `hedgeyard result <jobId>`: a job's stored result, from any host. */
export function resultCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(
      program
        .command('result')
        .description("print a job's stored result as JSON, from any host (while Redis keeps it)"),
    ),
    "look for the job in each of the pool's cells",
  )
    .argument('<jobId>', 'the job (a submit, a stream, or a retried dead letter prints its id)')
    .action(async (jobId: string, opts: CommonOptions & CellsOption) => {
      const where = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
      const state = opts.cells === undefined ? await getJob(where, jobId) : await inCells(opts.cells)
      async function inCells(cells: number): Promise<JobState> {
        const d = new CellDispatcher({ ...where, cells })
        try {
          return await d.getJob(jobId)
        } finally {
          await d.close()
        }
      }
      if (state.status === 'completed') process.stdout.write(`${JSON.stringify(state.result) ?? 'null'}\n`)
      else if (state.status === 'failed') fail(state.error.code, state.error.message)
      else if (state.status === 'pending') fail('PENDING', `job ${jobId} has no result yet`, 2)
      else fail('NOT_FOUND', `no job ${jobId} in pool '${opts.pool}' (or its result has expired)`)
    })
}
