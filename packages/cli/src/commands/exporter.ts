import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Command } from 'commander'
import { cellPool, isHedgeyardError, openPoolView, type PoolView } from 'hedgeyard'
import { createPoolMetrics, type ExportedPool } from '../exporter/pool-metrics.js'
import { createLogger } from '../logger.js'
import {
  type CellsOption,
  type CommonOptions,
  intOption,
  withCellsOption,
  withRedisOptions,
} from '../options.js'

interface ExporterOptions extends CellsOption {
  redis: CommonOptions['redis']
  pool: string[]
  prefix: string
  port: number
  host: string
}

/**
 * Defaults of `hedgeyard exporter`: the port next to the worker's `--metrics-port` of the docs
 * (9464), and every interface, as the worker's metrics endpoint: Prometheus scrapes from elsewhere.
 */
export const EXPORTER_DEFAULTS = Object.freeze({ port: 9465, host: '0.0.0.0' })

/**
 * `hedgeyard exporter`: serves `GET /metrics` (the pools' state read from Redis at each scrape, in
 * the Prometheus text format) and `GET /healthz`; SIGTERM stops it.
 */
export function exporterCommand(program: Command): void {
  withCellsOption(
    withRedisOptions(
      program
        .command('exporter')
        .description('serve Prometheus metrics of one or more pools, read from Redis at each scrape'),
    ),
    'every --pool is a logical pool over that many cells: export each cell, labelled cell="<i>"',
  )
    .option(
      '--pool <name>',
      'a pool to export; repeat it for more (default: default)',
      (name: string, pools: string[]) => [...pools, name],
      [] as string[],
    )
    .option('--prefix <prefix>', 'key prefix', 'hy')
    .option(
      '--port <n>',
      'port to listen on; 0 picks a free one (env HEDGEYARD_EXPORTER_PORT)',
      intOption('--port'),
      process.env.HEDGEYARD_EXPORTER_PORT === undefined
        ? EXPORTER_DEFAULTS.port
        : intOption('HEDGEYARD_EXPORTER_PORT')(process.env.HEDGEYARD_EXPORTER_PORT),
    )
    .option(
      '--host <address>',
      'address to listen on; 127.0.0.1 for this host only (env HEDGEYARD_EXPORTER_HOST)',
      process.env.HEDGEYARD_EXPORTER_HOST ?? EXPORTER_DEFAULTS.host,
    )
    .action(async (opts: ExporterOptions) => {
      const pools = [...new Set(opts.pool.length > 0 ? opts.pool : ['default'])]
      // Each pool read from Redis with its labels: a logical pool's cells are pools of their own.
      const sources = pools.flatMap((pool) =>
        opts.cells === undefined
          ? [{ name: pool, pool, cell: '' }]
          : Array.from({ length: opts.cells }, (_, i) => ({
              name: cellPool(pool, i),
              pool,
              cell: String(i),
            })),
      )
      const logger = createLogger().child({ component: 'exporter' })
      // All at once, so a bad pool name is reported as such even when Redis is unreachable too.
      const opened = await Promise.allSettled(
        sources.map(({ name }) =>
          openPoolView({ redis: opts.redis, pool: name, prefix: opts.prefix }, 'exporter'),
        ),
      )
      const failures = opened.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))
      if (failures.length > 0) {
        for (const r of opened) if (r.status === 'fulfilled') r.value.close()
        throw failures.find((err) => isHedgeyardError(err) && err.code === 'INVALID_ARGUMENT') ?? failures[0]
      }
      const views: ExportedPool[] = opened.map((r, i) => ({
        ...(sources[i] as Omit<ExportedPool, 'view'>),
        view: (r as PromiseFulfilledResult<PoolView>).value,
      }))
      const metrics = createPoolMetrics(views, {
        onPoolStatus: (pool, err) =>
          err === undefined
            ? logger.info({ pool }, 'pool readable again')
            : logger.warn({ pool, err }, 'cannot read pool; hedgeyard_pool_up is 0 until it can'),
      })
      const server = createServer((req, res) => {
        const path = (req.url ?? '/').split('?')[0]
        if (req.method !== 'GET' && req.method !== 'HEAD') {
          res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('method not allowed\n')
          return
        }
        if (path === '/healthz') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n')
          return
        }
        if (path !== '/metrics') {
          res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /metrics or /healthz\n')
          return
        }
        metrics.scrape().then(
          (text) => {
            res.writeHead(200, { 'content-type': metrics.registry.contentType })
            res.end(req.method === 'HEAD' ? undefined : text)
          },
          (err: unknown) => {
            logger.error({ err }, 'scrape failed')
            res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n')
          },
        )
      })
      let isStopping = false
      const stop = (signal: string) => {
        if (isStopping) process.exit(1)
        isStopping = true
        logger.info({ signal }, 'exporter stopping')
        for (const { view } of views) view.close()
        server.close(() => process.exit(0))
        server.closeAllConnections()
      }
      process.on('SIGTERM', () => stop('SIGTERM'))
      process.on('SIGINT', () => stop('SIGINT'))
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(opts.port, opts.host, () => resolve())
      })
      const { address, port } = server.address() as AddressInfo
      const host = address.includes(':') ? `[${address}]` : address
      logger.info({ pools, cells: opts.cells, url: `http://${host}:${port}/metrics` }, 'exporter listening')
    })
}
