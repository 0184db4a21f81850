import { type Command, InvalidArgumentError } from 'commander'
import { CellDispatcher, Dispatcher, type HedgeOptions, type JobStream, type RetryOptions } from 'hedgeyard'
import {
  type CellsOption,
  type CommonOptions,
  intOption,
  withCellsOption,
  withCommonOptions,
} from '../options.js'
import { fail } from '../output.js'

interface SubmitCliOptions extends CommonOptions, CellsOption {
  session?: string
  timeout?: number
  wait?: boolean
  hedgeDelay?: number | 'auto'
  hedgeMax?: number
  tied?: boolean
  retry?: number
  retryBackoffMs?: number
  maxAttempts?: number
  stream?: boolean
  onRedisUnavailable?: 'wait' | 'reject'
}

function redisUnavailableOption(value: string): 'wait' | 'reject' {
  if (value === 'wait' || value === 'reject') return value
  throw new InvalidArgumentError(`--on-redis-unavailable must be 'wait' or 'reject' (got '${value}')`)
}

function hedgeDelayOption(value: string): number | 'auto' {
  if (value === 'auto') return 'auto'
  return intOption('--hedge-delay')(value)
}

/** `hedgeyard submit '<json>'`: sends one request and prints its result as JSON. */
export function submitCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(program.command('submit').description('send one request and print its result as JSON')),
    "send it to one of the pool's cells: the session's, or the less loaded of two",
  )
    .argument('<json>', "the request, as JSON; '-' reads it from standard input")
    .option('--session <id>', 'session for affinity')
    .option('--timeout <ms>', 'time limit', intOption('--timeout'))
    .option('--wait', 'when every worker is full, wait for room instead of failing with SATURATED')
    .option(
      '--hedge-delay <ms|auto>',
      "hedge: send a copy to another worker after this delay; 'auto': a high percentile of this producer's recent latencies (a one-shot submit has none: 50 ms)",
      hedgeDelayOption,
    )
    .option('--hedge-max <n>', 'hedge: copies in all, the first included (2-5)', intOption('--hedge-max'))
    .option('--tied', 'hedge: queue two tied copies at once; the first to start runs')
    .option(
      '--retry <n>',
      'retry: send a copy that failed with a retryable error to another worker; copies in all, the first included (1-5)',
      intOption('--retry'),
    )
    .option(
      '--retry-backoff-ms <ms>',
      'retry: wait before each retry (default 100)',
      intOption('--retry-backoff-ms'),
    )
    .option(
      '--max-attempts <n>',
      'workers that may be lost holding the job before it goes to the dead letters (default 3)',
      intOption('--max-attempts'),
    )
    .option(
      '--on-redis-unavailable <wait|reject>',
      "while Redis cannot be reached (a restart, a failover): 'wait' for it up to the time limit (the default), or 'reject' at once with REDIS_UNAVAILABLE",
      redisUnavailableOption,
    )
    .option(
      '--stream',
      'stream: print the job id, then each chunk as a line {"seq":n,"data":...} as it comes, then the result',
    )
    .action(async (json: string, opts: SubmitCliOptions) => {
      let req: unknown
      // '-' reads the request from standard input (a large or generated request).
      const text = json === '-' ? await readStdin() : json
      try {
        req = JSON.parse(text)
      } catch (err) {
        fail('INVALID_ARGUMENT', `the request is not valid JSON: ${(err as Error).message}`)
      }
      const d = producerOf(opts)
      const options = {
        ...(opts.session === undefined ? {} : { session: opts.session }),
        ...(opts.timeout === undefined ? {} : { timeoutMs: opts.timeout }),
        ...(opts.wait ? { onSaturated: 'wait' as const } : {}),
        ...(opts.maxAttempts === undefined ? {} : { maxAttempts: opts.maxAttempts }),
        ...(opts.onRedisUnavailable === undefined ? {} : { onRedisUnavailable: opts.onRedisUnavailable }),
        ...hedgeOf(opts),
        ...retryOf(opts),
      }
      try {
        if (opts.stream) {
          const stream = d.stream(req, options)
          process.stderr.write(`job ${stream.jobId}\n`)
          await printStream(stream)
          return
        }
        const result = await d.submit(req, options)
        process.stdout.write(`${JSON.stringify(result) ?? 'null'}\n`)
      } finally {
        await d.close()
      }
    })
}

/** The producer of a command: a Dispatcher of the pool, or a CellDispatcher of its cells with --cells. */
export function producerOf(opts: CommonOptions & CellsOption): Dispatcher | CellDispatcher {
  const where = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
  return opts.cells === undefined
    ? new Dispatcher(where)
    : new CellDispatcher({ ...where, cells: opts.cells })
}

function hedgeOf(opts: SubmitCliOptions): { hedge?: HedgeOptions } {
  if (opts.hedgeDelay === undefined && opts.hedgeMax === undefined && !opts.tied) return {}
  return {
    hedge: {
      ...(opts.hedgeDelay === undefined ? {} : { delayMs: opts.hedgeDelay }),
      ...(opts.hedgeMax === undefined ? {} : { maxAttempts: opts.hedgeMax }),
      ...(opts.tied ? { mode: 'tied' as const } : {}),
    },
  }
}

function retryOf(opts: SubmitCliOptions): { retry?: RetryOptions } {
  if (opts.retry === undefined && opts.retryBackoffMs === undefined) return {}
  return {
    retry: {
      ...(opts.retry === undefined ? {} : { maxAttempts: opts.retry }),
      ...(opts.retryBackoffMs === undefined ? {} : { backoffMs: opts.retryBackoffMs }),
    },
  }
}

/** Prints each chunk as a JSON line as it comes, then the result as the last line. */
export async function printStream(stream: JobStream): Promise<void> {
  for await (const chunk of stream) process.stdout.write(`${JSON.stringify(chunk)}\n`)
  process.stdout.write(`${JSON.stringify({ result: await stream.result }) ?? 'null'}\n`)
}

async function readStdin(): Promise<string> {
  const parts: Buffer[] = []
  for await (const part of process.stdin) parts.push(part as Buffer)
  return Buffer.concat(parts).toString('utf8')
}
