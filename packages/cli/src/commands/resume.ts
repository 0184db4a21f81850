import type { Command } from 'commander'
import {
  type CellsOption,
  type CommonOptions,
  intOption,
  withCellsOption,
  withCommonOptions,
} from '../options.js'
import { printStream, producerOf } from './submit.js'

interface ResumeCliOptions extends CommonOptions, CellsOption {
  after?: number
  timeout?: number
}

/** `hedgeyard resume <jobId>`: follows a streamed job from any host. */
export function resumeCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(
      program
        .command('resume')
        .description('follow a streamed job from any host: its chunks (after --after), then its result'),
    ),
    "look for the job in each of the pool's cells",
  )
    .argument('<jobId>', 'the streamed job')
    .option('--after <seq>', 'print only the chunks after this one (default 0: all)', intOption('--after'))
    .option('--timeout <ms>', 'give up after this long (the job goes on)', intOption('--timeout'))
    .action(async (jobId: string, opts: ResumeCliOptions) => {
      const d = producerOf(opts)
      try {
        await printStream(
          d.resume(jobId, {
            ...(opts.after === undefined ? {} : { after: opts.after }),
            ...(opts.timeout === undefined ? {} : { timeoutMs: opts.timeout }),
          }),
        )
      } finally {
        await d.close()
      }
    })
}
