import type { Command } from 'commander'
import { createLogger } from '../logger.js'
import {
  type CellsOption,
  type CommonOptions,
  intOption,
  withCellsOption,
  withCommonOptions,
} from '../options.js'

interface GatewayCliOptions extends CommonOptions, CellsOption {
  port: number
  host: string
  apiKeysFile?: string
  insecureNoAuth?: boolean
  jobTtlMs?: number
  timeoutMs?: number
  maxBodyBytes?: number
  disconnectGraceMs?: number
  dashboard: boolean
}

/** `hedgeyard gateway`: the HTTP front door of a pool; SIGTERM stops it gracefully. */
export function gatewayCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(
      program
        .command('gateway')
        .description("serve the pool over HTTP: the seed's job API and Gemini-compatible endpoints"),
    ),
    'the pool is a logical pool over that many cells: sessions stick to a cell, jobs are found in any',
  )
    .option(
      '--port <n>',
      'port (env HEDGEYARD_GATEWAY_PORT)',
      intOption('--port'),
      Number(process.env.HEDGEYARD_GATEWAY_PORT ?? 8080),
    )
    .option(
      '--host <address>',
      'address to listen on (env HEDGEYARD_GATEWAY_HOST)',
      process.env.HEDGEYARD_GATEWAY_HOST ?? '127.0.0.1',
    )
    .option(
      '--api-keys-file <path>',
      'API keys, one per line: <tenant>:<key> or <key> (env HEDGEYARD_API_KEYS_FILE; HEDGEYARD_API_KEYS takes them comma-separated)',
      process.env.HEDGEYARD_API_KEYS_FILE,
    )
    .option('--insecure-no-auth', 'serve without API keys on a non-loopback address')
    .option(
      '--job-ttl-ms <ms>',
      "how long a job's state stays readable (default 3600000)",
      intOption('--job-ttl-ms'),
    )
    .option(
      '--timeout-ms <ms>',
      "time limit of one request's generation (default 120000)",
      intOption('--timeout-ms'),
    )
    .option('--max-body-bytes <n>', 'largest request body (default 1048576)', intOption('--max-body-bytes'))
    .option(
      '--disconnect-grace-ms <ms>',
      'how long a stream whose client left waits for it to come back before cancelling its job (default 5000)',
      intOption('--disconnect-grace-ms'),
    )
    .option('--no-dashboard', "do not serve the pool's live dashboard under /dashboard")
    .action(async (opts: GatewayCliOptions) => {
      const { createGateway } = await import('@hedgeyard/gateway')
      const logger = createLogger()
      const gateway = createGateway({
        redis: opts.redis,
        pool: opts.pool,
        ...(opts.cells === undefined ? {} : { cells: opts.cells }),
        prefix: opts.prefix,
        port: opts.port,
        host: opts.host,
        logger,
        ...(process.env.HEDGEYARD_API_KEYS ? { apiKeys: process.env.HEDGEYARD_API_KEYS } : {}),
        ...(opts.apiKeysFile ? { apiKeysFile: opts.apiKeysFile } : {}),
        ...(opts.insecureNoAuth ? { insecureNoAuth: true } : {}),
        ...(opts.jobTtlMs === undefined ? {} : { jobTtlMs: opts.jobTtlMs }),
        ...(opts.timeoutMs === undefined ? {} : { timeoutMs: opts.timeoutMs }),
        ...(opts.maxBodyBytes === undefined ? {} : { maxBodyBytes: opts.maxBodyBytes }),
        ...(opts.disconnectGraceMs === undefined ? {} : { disconnectGraceMs: opts.disconnectGraceMs }),
        ...(opts.dashboard ? {} : { dashboard: false }),
      })
      let isStopping = false
      const stop = (signal: string) => {
        if (isStopping) process.exit(1)
        isStopping = true
        logger.info({ signal }, 'gateway stopping')
        gateway.close().then(
          () => process.exit(0),
          () => process.exit(1),
        )
      }
      process.on('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGINT', () => stop('SIGINT'))
      await gateway.listen()
    })
}
