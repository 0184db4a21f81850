/** What the benchmark commands share: their numeric options, how they end, and the CLI of this checkout. */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

/** The `hedgeyard` command of this checkout (the bench is private and lives beside it). */
export const CLI = fileURLToPath(new URL('../../cli/dist/main.js', import.meta.url))

/** A numeric option: `fallback` when absent, else a number of at least `min` (an integer unless said). */
export function numberOption(
  name: string,
  value: string | undefined,
  fallback: number,
  { isInteger = true, min = 1 } = {},
): number {
  if (value === undefined) return fallback
  const n = Number(value)
  if (!Number.isFinite(n) || n < min || (isInteger && !Number.isInteger(n)))
    throw new Error(`--${name} must be ${isInteger ? 'an integer' : 'a number'} >= ${min} (got ${value})`)
  return n
}

/** The options a benchmark command takes, as node:util's parseArgs describes them. */
export type OptionSpec = Readonly<
  Record<string, { readonly type: 'string' | 'boolean'; readonly default?: string | boolean }>
>

/**
 * What every benchmark command does with its arguments before it starts anything: `--help` (or
 * `-h`) prints `usage` and exits 0; an option it does not know, or one missing its value, is
 * refused with the usage and exit code 2, without a stack trace. The command then reads its
 * options its own way.
 */
export function checkArgs(
  name: string,
  usage: string,
  options: OptionSpec,
  argv = process.argv.slice(2),
): void {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${usage}\n`)
    process.exit(0)
  }
  try {
    parseArgs({ args: argv, options, strict: true, allowPositionals: false })
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message}\n${usage}\n`)
    process.exit(2)
  }
}

/** Runs a benchmark's main: its exit code, or 1 with the error printed. */
export function runMain(main: () => Promise<number | undefined>): void {
  main().then(
    (code) => {
      process.exitCode = code ?? 0
    },
    (err: unknown) => {
      console.error(err)
      process.exitCode = 1
    },
  )
}

/**
 * Starts `hedgeyard <args>` and resolves once its output matches `ready` (with the match), or
 * rejects with that output when it exits or takes longer than `timeoutMs`. It is killed if this
 * process exits first.
 */
export async function startCli(
  args: string[],
  ready: RegExp,
  env: Record<string, string> = {},
  timeoutMs = 15_000,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const kill = () => child.kill('SIGKILL')
  process.once('exit', kill)
  child.once('exit', () => process.off('exit', kill))
  let output = ''
  for (const stream of [child.stdout, child.stderr])
    stream?.on('data', (d) => (output = (output + d).slice(-20_000)))
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const match = ready.exec(output)
    if (match) return { child, match }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`hedgeyard ${args[0]} did not start:\n${output}`)
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}
