import type { Command } from 'commander'
import { createLogger } from '../logger.js'
import { type CommonOptions, intOption, withCommonOptions } from '../options.js'
import { fail } from '../output.js'

interface DashboardCliOptions extends CommonOptions {
  port: number
  host: string
  intervalMs?: number
  insecureNoAuth?: boolean
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

/** `hedgeyard dashboard`: a live web view of a pool, with drain, retry and purge; SIGTERM stops it. */
export function dashboardCommand(program: Command): void {
  withCommonOptions(
    program
      .command('dashboard')
      .description('serve a live web dashboard of a pool: workers, throughput, latency, dead letters'),
  )
    .option('--port <n>', 'port (0: any free one)', intOption('--port'), 8090)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--interval-ms <ms>',
      'how often the pool is read while a page is open (default 1000)',
      intOption('--interval-ms'),
    )
    .option(
      '--insecure-no-auth',
      'serve on an address other than loopback: anyone who reaches it can drain workers and purge dead letters',
    )
    .action(async (opts: DashboardCliOptions) => {
      if (!isLoopback(opts.host) && !opts.insecureNoAuth) {
        fail(
          'INVALID_ARGUMENT',
          `refusing to serve the dashboard on ${opts.host} without authentication: use a loopback address, the gateway's /dashboard (behind its API keys), or --insecure-no-auth`,
        )
      }
      const { createDashboardServer } = await import('@hedgeyard/dashboard')
      const logger = createLogger({ toStderr: true })
      const server = createDashboardServer({
        redis: opts.redis,
        pool: opts.pool,
        prefix: opts.prefix,
        port: opts.port,
        host: opts.host,
        logger,
        ...(opts.intervalMs === undefined ? {} : { intervalMs: opts.intervalMs }),
      })
      let isStopping = false
      const stop = () => {
        if (isStopping) process.exit(1)
        isStopping = true
        server.close().then(
          () => process.exit(0),
          () => process.exit(1),
        )
      }
      process.on('SIGTERM', stop)
      process.on('SIGINT', stop)
      const url = await server.listen()
      process.stdout.write(`dashboard of pool '${opts.pool}' at ${url}\n`)
    })
}
