import type { Command } from 'commander'
import {
  clearPoolLimits,
  getPoolLimits,
  type Limiter,
  type PoolLimits,
  type PoolLimitsOptions,
  setPoolLimits,
} from 'hedgeyard'
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

/** Parses `--key-class`: letters, digits and `_ . -`, at most 64 characters (as the library's limitClass). */
function classOption(value: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    throw new Error(
      `--key-class must be 1-64 characters of letters, digits, '_', '.' or '-' (got '${value}')`,
    )
  }
  return value
}

interface ClassOptions extends CommonOptions {
  keyClass?: string
}

interface SetOptions extends ClassOptions {
  rate?: { limit: number; periodMs: number }
  burst?: number
  cost?: { limit: number; periodMs: number }
  costBurst?: number
  concurrency?: number
}

const KEY_CLASS_HELP =
  "a class of tenants (submit option limitClass): each of its tenants (limitKey) gets these limits on its own, on top of the pool's"

/** The limits a command works on: the pool's, or a class's. */
function target(opts: ClassOptions): PoolLimitsOptions {
  return opts.keyClass === undefined ? {} : { limitClass: opts.keyClass }
}

/** How the lines about these limits start: `pool 'chat'` or `pool 'chat' class 'free'`. */
function subject(opts: ClassOptions): string {
  return opts.keyClass === undefined ? `pool '${opts.pool}'` : `pool '${opts.pool}' class '${opts.keyClass}'`
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

/**
 * `hedgeyard limits set|show|clear`: a pool's quotas, or with `--key-class` the limits of each
 * tenant of a class, obeyed by every producer of the pool.
 */
export function limitsCommand(program: Command): void {
  const limits = program
    .command('limits')
    .description(
      "set, show or clear a pool's quotas, or a class of tenants' limits (every producer on every host obeys them)",
    )
  withCommonOptions(
    limits
      .command('set')
      .description("set the pool's quotas, or a class's limits (a limit left out is removed)"),
  )
    .option('--key-class <class>', KEY_CLASS_HELP, classOption)
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
    .option(
      '--concurrency <n>',
      'with --key-class: the most jobs one tenant may have queued or running at once',
      intOption('--concurrency'),
    )
    .action(async (opts: SetOptions) => {
      if (opts.concurrency !== undefined && opts.keyClass === undefined) {
        fail(
          'INVALID_ARGUMENT',
          "--concurrency is a cap per tenant: give --key-class (a pool's own concurrency is its workers')",
        )
      }
      if (opts.rate === undefined && opts.cost === undefined && opts.concurrency === undefined) {
        fail(
          'INVALID_ARGUMENT',
          opts.keyClass === undefined
            ? 'give --rate, --cost or both (`hedgeyard limits clear` removes the quotas)'
            : 'give --rate, --cost, --concurrency or more (`hedgeyard limits clear --key-class` removes them)',
        )
      }
      const set: PoolLimits = {}
      if (opts.rate) set.rate = { ...opts.rate, ...(opts.burst === undefined ? {} : { burst: opts.burst }) }
      if (opts.cost)
        set.cost = { ...opts.cost, ...(opts.costBurst === undefined ? {} : { burst: opts.costBurst }) }
      if (opts.concurrency !== undefined) set.concurrency = opts.concurrency
      await setPoolLimits({ redis: opts.redis, pool: opts.pool, prefix: opts.prefix }, set, target(opts))
      printLimits(opts, set)
    })
  withCommonOptions(limits.command('show').description("show the pool's quotas, or a class's limits"))
    .option('--key-class <class>', KEY_CLASS_HELP, classOption)
    .option('--json', 'print JSON')
    .action(async (opts: ClassOptions & { json?: boolean }) => {
      const got = await getPoolLimits(
        { redis: opts.redis, pool: opts.pool, prefix: opts.prefix },
        target(opts),
      )
      if (opts.json) process.stdout.write(`${JSON.stringify(got)}\n`)
      else printLimits(opts, got)
    })
  withCommonOptions(limits.command('clear').description("remove the pool's quotas, or a class's limits"))
    .option('--key-class <class>', KEY_CLASS_HELP, classOption)
    .action(async (opts: ClassOptions) => {
      const had = await clearPoolLimits(
        { redis: opts.redis, pool: opts.pool, prefix: opts.prefix },
        target(opts),
      )
      const what = opts.keyClass === undefined ? 'quotas' : 'limits'
      process.stdout.write(had ? `${subject(opts)}: ${what} removed\n` : `${subject(opts)} had no ${what}\n`)
    })
}

function printLimits(opts: ClassOptions, limits: PoolLimits): void {
  const who = subject(opts)
  const each = opts.keyClass === undefined ? '' : ' per tenant'
  if (limits.rate === undefined && limits.cost === undefined && limits.concurrency === undefined) {
    process.stdout.write(`${who} has no ${opts.keyClass === undefined ? 'quotas' : 'limits'}\n`)
    return
  }
  if (limits.rate) process.stdout.write(`${who} rate: ${describeLimiter(limits.rate)} requests${each}\n`)
  if (limits.cost) process.stdout.write(`${who} cost: ${describeLimiter(limits.cost)} units${each}\n`)
  if (limits.concurrency !== undefined) {
    process.stdout.write(`${who} concurrency: ${limits.concurrency} jobs in flight${each}\n`)
  }
}
