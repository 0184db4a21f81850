import type { Command } from 'commander'
import { clearPoolLimits, getPoolLimits, type Limiter, type PoolLimits, setPoolLimits } from 'hedgeyard'
import { type CommonOptions, intOption, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

const PERIODS: Record<string, number> = { ms: 1, s: 1_000, sec: 1_000, min: 60_000, m: 60_000, h: 3_600_000 }

/** Parses `<n>/<period>`: `50/s`, `100000/min`, `10/500ms`, `3600/h`. */
export function rateOption(name: string): (value: string) => { limit: number; periodMs: number } {
  return (value: string) => {
    const m = /^(\d+)\/(\d*)(ms|s|sec|min|m|h)$/.exec(value)
    const unit = m ? PERIODS[m[3] as string] : undefined
    if (!m || unit === undefined) {
      throw new Error(`${name} must be <n>/<period>, such as 50/s, 100000/min or 10/500ms (got '${value}')`)
    }
    return { limit: Number(m[1]), periodMs: (m[2] === '' ? 1 : Number(m[2])) * unit }
  }
}

interface SetOptions extends CommonOptions {
  rate?: { limit: number; periodMs: number }
  burst?: number
  cost?: { limit: number; periodMs: number }
  costBurst?: number
}

function describeLimiter(l: Limiter): string {
  const per =
    l.periodMs % 3_600_000 === 0 && l.periodMs > 0
      ? `${l.periodMs / 3_600_000 === 1 ? '' : l.periodMs / 3_600_000}h`
      : l.periodMs % 60_000 === 0
        ? `${l.periodMs / 60_000 === 1 ? '' : l.periodMs / 60_000}min`
        : l.periodMs % 1_000 === 0
          ? `${l.periodMs / 1_000 === 1 ? '' : l.periodMs / 1_000}s`
          : `${l.periodMs}ms`
  return `${l.limit}/${per}, burst ${l.burst ?? 1}`
}

/** `hedgeyard limits set|show|clear`: a pool's quotas, obeyed by every producer of the pool. */
export function limitsCommand(program: Command): void {
  const limits = program
    .command('limits')
    .description("set, show or clear a pool's quotas (every producer on every host obeys them)")
  withCommonOptions(
    limits.command('set').description("set the pool's quotas (a limiter left out is removed)"),
  )
    .option('--rate <n/period>', 'requests per period: 50/s, 3000/min, 10/500ms', rateOption('--rate'))
    .option(
      '--burst <n>',
      'requests that may go at once after a quiet spell (default 1)',
      intOption('--burst'),
    )
    .option(
      '--cost <n/period>',
      'cost budget per period (each submit costs its `cost`): 100000/min',
      rateOption('--cost'),
    )
    .option('--cost-burst <n>', 'cost units that may go at once (default 1)', intOption('--cost-burst'))
    .action(async (opts: SetOptions) => {
      if (opts.rate === undefined && opts.cost === undefined) {
        fail('INVALID_ARGUMENT', 'give --rate, --cost or both (`hedgeyard limits clear` removes the quotas)')
      }
      const set: PoolLimits = {}
      if (opts.rate) set.rate = { ...opts.rate, ...(opts.burst === undefined ? {} : { burst: opts.burst }) }
      if (opts.cost)
        set.cost = { ...opts.cost, ...(opts.costBurst === undefined ? {} : { burst: opts.costBurst }) }
      await setPoolLimits({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix }, set)
      printLimits(opts.pool, set)
    })
  withCommonOptions(limits.command('show').description("show the pool's quotas"))
    .option('--json', 'print JSON')
    .action(async (opts: CommonOptions & { json?: boolean }) => {
      const got = await getPoolLimits({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix })
      if (opts.json) process.stdout.write(`${JSON.stringify(got)}\n`)
      else printLimits(opts.pool, got)
    })
  withCommonOptions(limits.command('clear').description("remove the pool's quotas")).action(
    async (opts: CommonOptions) => {
      const had = await clearPoolLimits({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix })
      process.stdout.write(
        had ? `pool '${opts.pool}': quotas removed\n` : `pool '${opts.pool}' had no quotas\n`,
      )
    },
  )
}

function printLimits(pool: string, limits: PoolLimits): void {
  if (limits.rate === undefined && limits.cost === undefined) {
    process.stdout.write(`pool '${pool}' has no quotas\n`)
    return
  }
  if (limits.rate) process.stdout.write(`pool '${pool}' rate: ${describeLimiter(limits.rate)} requests\n`)
  if (limits.cost) process.stdout.write(`pool '${pool}' cost: ${describeLimiter(limits.cost)} units\n`)
}
