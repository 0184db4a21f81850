import type { Command } from 'commander'

/** Options every command takes. */
export interface CommonOptions {
  redis: string
  pool: string
  prefix: string
}

/** The Redis URL when neither --redis nor HEDGEYARD_REDIS_URL says otherwise. */
export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'

/** Adds --redis, --pool and --prefix to a command. */
export function withCommonOptions(cmd: Command): Command {
  return cmd
    .option(
      '--redis <url>',
      'Redis URL (env HEDGEYARD_REDIS_URL)',
      process.env.HEDGEYARD_REDIS_URL ?? DEFAULT_REDIS_URL,
    )
    .option('--pool <name>', 'pool name', 'default')
    .option('--prefix <prefix>', 'key prefix', 'hy')
}

/** Parses a non-negative integer option, naming it in the error. */
export function intOption(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value)
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new Error(`${name} must be a non-negative integer (got '${value}')`)
    }
    return n
  }
}
