import { type Command, Option } from 'commander'
import {
  type BreakerOptions,
  type Handler,
  startCellWorkers,
  startWorkers,
  type WorkerGroup,
  type WorkerOptions,
} from 'hedgeyard'
import { prometheusMetrics } from 'hedgeyard/prometheus'
import { collectDefaultMetrics, Registry } from 'prom-client'
import { importHandlerModule } from '../handler-module.js'
import { createLogger } from '../logger.js'
import { serveMetrics } from '../metrics-server.js'
import {
  type CellsOption,
  type CommonOptions,
  intOption,
  withCellsOption,
  withCommonOptions,
} from '../options.js'

interface WorkerCliOptions extends CommonOptions, CellsOption {
  handler: string
  count?: number
  concurrency?: number
  queueCapacity?: number
  prefetch?: number
  leaseMs?: number
  blockMs?: number
  drainTimeoutMs?: number
  resultTtlMs?: number
  maxResultBytes?: number
  maxPayloadBytes?: number
  deadLetterCap?: number
  breakerFailures?: number
  breakerCoolOffMs?: number
  maxChunks?: number
  maxChunkBytes?: number
  idPrefix?: string
  host?: string
  metricsPort?: number
  metricsHost: string
}

/**
 * Loads a handler module, a file or a package (`@hedgeyard/genai`): its `default` export or its
 * `handler` export, which must be a function.
 */
export async function loadHandler(path: string): Promise<Handler> {
  const mod = await importHandlerModule(path)
  const handler = mod.default ?? mod.handler
  if (typeof handler !== 'function') {
    throw new Error(
      `${path} must export a function as 'default' or 'handler' (found: ${Object.keys(mod).join(', ') || 'nothing'})`,
    )
  }
  return handler as Handler
}

/** The worker's flags besides --handler and --metrics-host. */
const WORKER_FLAGS: readonly [flags: string, description: string][] = [
  ['--count <n>', 'workers in this process'],
  ['--concurrency <n>', 'jobs one worker runs at once'],
  ['--queue-capacity <n>', 'jobs one worker may hold queued'],
  ['--prefetch <n>', 'queued jobs one worker reads ahead of its free slots (faster short jobs; 0 = none)'],
  ['--lease-ms <ms>', 'lease of a worker'],
  [
    '--breaker-failures <n>',
    "consecutive retryable failures that open a worker's breaker (default 5; 0: no breaker)",
  ],
  [
    '--breaker-cool-off-ms <ms>',
    'how long an open breaker keeps its worker out before a probe job (default 5000)',
  ],
  ['--block-ms <ms>', 'BLOCK of each read of a worker (default 5000)'],
  ['--drain-timeout-ms <ms>', 'how long a drain waits for running jobs before aborting them (default 30000)'],
  ['--result-ttl-ms <ms>', 'how long a result is kept in Redis (default 60000)'],
  [
    '--max-result-bytes <n>',
    'largest result, as JSON; a larger one fails with RESULT_TOO_LARGE (default 1048576)',
  ],
  [
    '--max-payload-bytes <n>',
    'largest request a worker runs, as JSON; a larger entry is dead-lettered (default 1048576)',
  ],
  ['--dead-letter-cap <n>', 'most dead letters kept (default 10000)'],
  ['--max-chunks <n>', 'most chunks one streamed job may emit (default 10000)'],
  ['--max-chunk-bytes <n>', 'largest chunk of a streamed job, as JSON (default 65536)'],
  ['--id-prefix <id>', 'worker ids are <id>-1, <id>-2, ...; reuse it to resume pending jobs'],
  [
    '--host <name>',
    "the machine these workers run on (default: the OS host name); hedges prefer another host's workers",
  ],
  ['--metrics-port <port>', 'serve Prometheus metrics at http://<metrics-host>:<port>/metrics'],
]

/** The flags whose value is text; every other is a non-negative integer. */
const TEXT_FLAGS = new Set(['--id-prefix', '--host'])

/** The environment variable of a flag: --drain-timeout-ms is HEDGEYARD_DRAIN_TIMEOUT_MS. */
export function envName(flag: string): string {
  return `HEDGEYARD_${flag.replace(/^--/, '').replaceAll('-', '_').toUpperCase()}`
}

/** `hedgeyard worker`: runs workers as their own deployment; SIGTERM drains them. */
export function workerCommand(program: Command): void {
  const cmd = withCommonOptions(
    program.command('worker').description('run workers that execute a handler module'),
  ).addOption(
    new Option('--handler <path>', "module exporting the handler as 'default' or 'handler'")
      .env('HEDGEYARD_HANDLER')
      .makeOptionMandatory(),
  )
  // Every worker option has a flag and an environment variable: --drain-timeout-ms and
  // HEDGEYARD_DRAIN_TIMEOUT_MS, say (a container sets variables; a shell passes flags).
  for (const [flags, description] of WORKER_FLAGS) {
    const long = flags.split(' ')[0] as string
    const option = new Option(flags, description).env(envName(long))
    cmd.addOption(TEXT_FLAGS.has(long) ? option : option.argParser(intOption(long)))
  }
  withCellsOption(cmd, 'join the cell of the pool with the fewest live workers, of this many')
  cmd.addOption(
    new Option('--metrics-host <host>', 'address the metrics endpoint listens on')
      .env('HEDGEYARD_METRICS_HOST')
      .default('0.0.0.0'),
  )
  cmd.action(async (opts: WorkerCliOptions) => {
    const logger = createLogger()
    // The signal handlers come first: a SIGTERM while the handler module loads or the workers
    // register would otherwise kill the process (Node's default) instead of draining it.
    let group: WorkerGroup | undefined
    let isStopping = false
    const drain = (workers: WorkerGroup) =>
      workers.close().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'drain failed')
          process.exit(1)
        },
      )
    const stop = (signal: string) => {
      if (isStopping) {
        logger.warn({ signal }, 'second signal: exiting without draining')
        process.exit(1)
      }
      isStopping = true
      logger.info({ signal }, 'draining workers')
      // Still starting: drained as soon as started, below.
      if (group) void drain(group)
    }
    process.on('SIGTERM', () => stop('SIGTERM'))
    process.on('SIGINT', () => stop('SIGINT'))
    const handler = await loadHandler(opts.handler)
    const metrics = await startMetrics(opts, logger)
    const options: WorkerOptions<unknown, unknown> = {
      ...(metrics === undefined ? {} : { metrics }),
      redis: opts.redis,
      pool: opts.pool,
      prefix: opts.prefix,
      handler,
      logger,
      ...(opts.count === undefined ? {} : { count: opts.count }),
      ...(opts.concurrency === undefined ? {} : { concurrency: opts.concurrency }),
      ...(opts.queueCapacity === undefined ? {} : { queueCapacity: opts.queueCapacity }),
      ...(opts.prefetch === undefined ? {} : { prefetch: opts.prefetch }),
      ...(opts.leaseMs === undefined ? {} : { leaseMs: opts.leaseMs }),
      ...(opts.maxChunks === undefined ? {} : { maxChunks: opts.maxChunks }),
      ...(opts.blockMs === undefined ? {} : { blockMs: opts.blockMs }),
      ...(opts.drainTimeoutMs === undefined ? {} : { drainTimeoutMs: opts.drainTimeoutMs }),
      ...(opts.resultTtlMs === undefined ? {} : { resultTtlMs: opts.resultTtlMs }),
      ...(opts.maxResultBytes === undefined ? {} : { maxResultBytes: opts.maxResultBytes }),
      ...(opts.maxPayloadBytes === undefined ? {} : { maxPayloadBytes: opts.maxPayloadBytes }),
      ...(opts.deadLetterCap === undefined ? {} : { deadLetterCap: opts.deadLetterCap }),
      ...breakerOf(opts),
      ...(opts.maxChunkBytes === undefined ? {} : { maxChunkBytes: opts.maxChunkBytes }),
      ...(opts.idPrefix === undefined ? {} : { idPrefix: opts.idPrefix }),
      ...(opts.host === undefined ? {} : { host: opts.host }),
    }
    if (opts.cells === undefined) group = await startWorkers(options)
    else {
      const joined = await startCellWorkers({ ...options, cells: opts.cells })
      logger.info({ pool: opts.pool, cell: joined.cell, cellPool: joined.cellPool }, 'joined a cell')
      group = joined
    }
    if (isStopping) {
      void drain(group)
      return
    }
    // Drained from elsewhere (`hedgeyard drain`): once every worker here has left, so does the process.
    void group.done.then(() => {
      if (!isStopping) {
        logger.info('every worker was drained; exiting')
        process.exit(0)
      }
    })
  })
}

/** With --metrics-port: the process's metrics and the workers', served at /metrics. */
async function startMetrics(opts: WorkerCliOptions, logger: ReturnType<typeof createLogger>) {
  if (opts.metricsPort === undefined) return undefined
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const metrics = prometheusMetrics({ registry })
  const server = await serveMetrics(registry, opts.metricsPort, opts.metricsHost, logger)
  // The port it got (with --metrics-port 0, a free one).
  const { port } = server.address() as { port: number }
  logger.info({ url: `http://${opts.metricsHost}:${port}/metrics` }, 'serving metrics')
  return metrics
}

/** The breaker the flags ask for: none for --breaker-failures 0, the defaults when neither is given. */
function breakerOf(opts: WorkerCliOptions): { breaker?: BreakerOptions | false } {
  if (opts.breakerFailures === 0) return { breaker: false }
  if (opts.breakerFailures === undefined && opts.breakerCoolOffMs === undefined) return {}
  return {
    breaker: {
      ...(opts.breakerFailures === undefined ? {} : { failures: opts.breakerFailures }),
      ...(opts.breakerCoolOffMs === undefined ? {} : { coolOffMs: opts.breakerCoolOffMs }),
    },
  }
}
