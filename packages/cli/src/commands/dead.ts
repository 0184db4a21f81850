import type { Command } from 'commander'
import { listDeadLetters, purgeDeadLetters, retryDeadLetters } from 'hedgeyard'
import { type CommonOptions, intOption, withCommonOptions } from '../options.js'
import { fail, table } from '../output.js'

interface Selection extends CommonOptions {
  all?: boolean
}

function selection(deadIds: string[], opts: Selection): { deadIds: string[] } | { all: true } {
  if (opts.all) return { all: true }
  if (deadIds.length === 0)
    fail('INVALID_ARGUMENT', 'name the dead letters (ids from `hedgeyard dead list`) or pass --all')
  return { deadIds }
}

/** `hedgeyard dead list|retry|purge`: the dead letters of a pool. */
export function deadCommand(program: Command): void {
  const dead = program.command('dead').description('list, retry or purge dead letters')
  withCommonOptions(dead.command('list').description('show dead letters, oldest first'))
    .option('--count <n>', 'how many', intOption('--count'), 100)
    .option('--json', 'print JSON')
    .action(async (opts: CommonOptions & { count: number; json?: boolean }) => {
      const letters = await listDeadLetters({
        redis: opts.redis,
        pool: opts.pool,
        prefix: opts.prefix,
        count: opts.count,
      })
      if (opts.json) {
        process.stdout.write(`${JSON.stringify(letters, null, 2)}\n`)
        return
      }
      if (letters.length === 0) {
        process.stdout.write(`pool '${opts.pool}' has no dead letters\n`)
        return
      }
      const rows = letters.map((l) => [l.deadId, l.jobId, l.workerId, l.attempt, l.reason])
      process.stdout.write(`${table(['dead id', 'job', 'worker', 'attempt', 'reason'], rows)}\n`)
    })
  withCommonOptions(dead.command('retry').description('dispatch dead letters again as new jobs'))
    .argument('[deadIds...]', 'ids from `hedgeyard dead list`')
    .option('--all', 'every dead letter')
    .action(async (deadIds: string[], opts: Selection) => {
      const retried = await retryDeadLetters({
        redis: opts.redis,
        pool: opts.pool,
        prefix: opts.prefix,
        ...selection(deadIds, opts),
      })
      for (const r of retried)
        process.stdout.write(`retried ${r.deadId} as job ${r.jobId} on ${r.workerId}\n`)
      process.stdout.write(`${retried.length} dead letters retried\n`)
    })
  withCommonOptions(dead.command('purge').description('delete dead letters'))
    .argument('[deadIds...]', 'ids from `hedgeyard dead list`')
    .option('--all', 'every dead letter')
    .action(async (deadIds: string[], opts: Selection) => {
      const count = await purgeDeadLetters({
        redis: opts.redis,
        pool: opts.pool,
        prefix: opts.prefix,
        ...selection(deadIds, opts),
      })
      process.stdout.write(`${count} dead letters deleted\n`)
    })
}
