import type { Command } from 'commander'
import { getJob } from 'hedgeyard'
import { type CommonOptions, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

/** `hedgeyard result <jobId>`: a job's stored result, from any host. */
export function resultCommand(program: Command): void {
  withCommonOptions(
    program
      .command('result')
      .description("print a job's stored result as JSON, from any host (while Redis keeps it)"),
  )
    .argument('<jobId>', 'the job (a submit, a stream, or a retried dead letter prints its id)')
    .action(async (jobId: string, opts: CommonOptions) => {
      const state = await getJob({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix }, jobId)
      if (state.status === 'completed') process.stdout.write(`${JSON.stringify(state.result) ?? 'null'}\n`)
      else if (state.status === 'failed') fail(state.error.code, state.error.message)
      else if (state.status === 'pending') fail('PENDING', `job ${jobId} has no result yet`, 2)
      else fail('NOT_FOUND', `no job ${jobId} in pool '${opts.pool}' (or its result has expired)`)
    })
}
