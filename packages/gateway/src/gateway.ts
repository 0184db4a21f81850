import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { CellDispatcher, Dispatcher, HedgeyardError, type SubmitOptions, type WorkerMetrics } from 'hedgeyard'
import { prometheusMetrics } from 'hedgeyard/prometheus'
import { type Logger, pino } from 'pino'
import { type ApiKeys, loadApiKeys } from './api-keys.js'
import { dashboardCookieKey, dashboardKeyHint, mountDashboard } from './dashboard-mount.js'
import { failure, googleError, type HttpFailure, httpFailureOf } from './google-error.js'
import { createMetrics, type GatewayMetrics } from './metrics.js'
import { GATEWAY_DEFAULTS, type GatewayOptions, isLoopback, maskUrl } from './options.js'
import { geminiRoutes } from './routes/gemini.js'
import { opsRoutes } from './routes/ops.js'
import { seedRoutes } from './routes/seed.js'

/**
 * What the routes use of a dispatcher: a Dispatcher of the pool, or with `cells` a CellDispatcher
 * over its cells, whose workers carry their cell.
 */
export type GatewayDispatcher = Pick<
  Dispatcher,
  'pool' | 'submit' | 'stream' | 'resume' | 'resumes' | 'cancel' | 'getJob' | 'close'
> & { workerMetrics(): Promise<(WorkerMetrics & { cell?: number })[]> }

/** A running gateway: its Fastify app and dispatcher. */
export interface Gateway {
  readonly app: FastifyInstance
  readonly dispatcher: GatewayDispatcher
  /** The settings it runs with, secrets masked: what it prints at start. */
  readonly config: Record<string, unknown>
  /** Listens; resolves with its URL. */
  listen(): Promise<string>
  /** Stops taking requests, lets those under way finish, and disconnects. */
  close(): Promise<void>
}

/** What the routes share. */
export interface RouteContext {
  dispatcher: GatewayDispatcher
  metrics: GatewayMetrics
  timeoutMs: number
  disconnectGraceMs: number
  logger: Logger
  /** The submit options of a request: its session and limits (the tenant its key names). */
  submitOptions(req: FastifyRequest, signal?: AbortSignal): SubmitOptions
}

/** Paths that answer without an API key: health for load balancers, metrics for Prometheus. */
const OPEN_PATHS = new Set(['/healthz', '/readyz', '/metrics'])

/** Sends a failure in Google's shape, with Retry-After when it has one. */
export function sendFailure(reply: FastifyReply, f: HttpFailure): FastifyReply {
  if (f.retryAfterS !== undefined) reply.header('retry-after', String(f.retryAfterS))
  return reply.code(f.httpCode).send(googleError(f))
}

/**
 * The API key a request presents: `x-goog-api-key` (the Gemini SDK's), `Authorization: Bearer`,
 * `?key=`, or under /dashboard the dashboard's cookie.
 */
function presentedKey(req: FastifyRequest): string | undefined {
  const header = req.headers['x-goog-api-key']
  if (typeof header === 'string') return header
  const auth = req.headers.authorization
  if (typeof auth === 'string' && auth.startsWith('Bearer ')) return auth.slice(7).trim()
  const query = (req.query as Record<string, unknown> | undefined)?.key
  return typeof query === 'string' ? query : dashboardCookieKey(req)
}

function checkInt(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new HedgeyardError(
      'INVALID_ARGUMENT',
      `${name} must be a whole number from ${min} to ${max} (got ${value})`,
    )
  }
  return value
}

/**
 * Makes the gateway: the seed's job API (`POST /generate`, `GET /jobs/:id`, `GET /workers`),
 * Gemini's `generateContent` and `streamGenerateContent` (so the official SDK works against it),
 * health and Prometheus metrics. Stateless: every job's state is in Redis, so any number of
 * instances can serve the same pool behind a load balancer.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad option, or for a non-loopback host without API
 * keys (unless `insecureNoAuth`).
 */
export function createGateway(options: GatewayOptions): Gateway {
  const o = {
    ...GATEWAY_DEFAULTS,
    ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)),
  }
  const port = checkInt('port', o.port, 0, 65_535)
  const jobTtlMs = checkInt('jobTtlMs', o.jobTtlMs, 1_000, 30 * 86_400_000)
  const timeoutMs = checkInt('timeoutMs', o.timeoutMs, 1, 86_400_000)
  const maxBodyBytes = checkInt('maxBodyBytes', o.maxBodyBytes, 1_024, 512 * 1_048_576)
  const disconnectGraceMs = checkInt('disconnectGraceMs', o.disconnectGraceMs, 0, 3_600_000)
  let keys: ApiKeys
  try {
    keys = loadApiKeys({ file: options.apiKeysFile, list: options.apiKeys })
  } catch (err) {
    throw new HedgeyardError('INVALID_ARGUMENT', (err as Error).message, { cause: err })
  }
  if (keys.count === 0 && !o.insecureNoAuth && !isLoopback(o.host)) {
    throw new HedgeyardError(
      'INVALID_ARGUMENT',
      `refusing to serve on ${o.host} without API keys: give --api-keys-file or HEDGEYARD_API_KEYS, or --insecure-no-auth`,
    )
  }
  const logger = (options.logger ?? pino({ level: 'silent' })).child({
    component: 'gateway',
    pool: options.pool,
  })
  const metrics = createMetrics()
  const dispatcherOptions = {
    redis: options.redis,
    pool: options.pool,
    prefix: o.prefix,
    resultTtlMs: jobTtlMs,
    timeoutMs,
    logger,
    // The library's submit, hedge and retry metrics on the gateway's own /metrics.
    metrics: prometheusMetrics({ registry: metrics.registry }),
  }
  // With cells, a session sticks to its cell and a job is looked for in every cell (docs/cells.md).
  const dispatcher: GatewayDispatcher =
    options.cells === undefined
      ? new Dispatcher(dispatcherOptions)
      : new CellDispatcher({ ...dispatcherOptions, cells: options.cells })
  // The dashboard shows one pool, so it is off over cells: point `hedgeyard dashboard` at a cell.
  const hasDashboard = o.dashboard && options.cells === undefined
  const app = Fastify({ bodyLimit: maxBodyBytes, logger: false })
  // JSON only: any other content type is 415.
  app.removeContentTypeParser('text/plain')
  app.decorateRequest('tenant', undefined)

  app.addHook('onRequest', async (req, reply) => {
    if (keys.count === 0 || OPEN_PATHS.has(req.url.split('?')[0] as string)) return
    const tenant = keys.tenantOf(presentedKey(req))
    if (tenant === undefined) {
      const hasKey = presentedKey(req) !== undefined
      return sendFailure(
        reply,
        failure(
          401,
          hasKey
            ? 'the API key is not valid'
            : (dashboardKeyHint(req.url) ??
                'an API key is required (x-goog-api-key or Authorization: Bearer)'),
        ),
      )
    }
    ;(req as FastifyRequest & { tenant?: string }).tenant = tenant
  })
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    metrics.requests.inc({ route, code: String(reply.statusCode) })
    metrics.duration.observe({ route }, reply.elapsedTime / 1_000)
    // The path only: a query may hold an API key.
    logger.debug(
      { method: req.method, route, code: reply.statusCode, ms: Math.round(reply.elapsedTime) },
      'request',
    )
  })
  app.setErrorHandler((err, _req, reply) => {
    const statusCode = (err as { statusCode?: number }).statusCode
    if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
      const message =
        statusCode === 413
          ? `the body is larger than ${maxBodyBytes} bytes`
          : statusCode === 415
            ? 'the body must be JSON (content-type: application/json)'
            : (err as Error).message
      return sendFailure(reply, failure(statusCode, message))
    }
    return sendFailure(reply, httpFailureOf(err))
  })
  app.setNotFoundHandler((req, reply) =>
    sendFailure(reply, failure(404, `no route ${req.method} ${req.url.split('?')[0]}`)),
  )

  const ctx: RouteContext = {
    dispatcher,
    metrics,
    timeoutMs,
    disconnectGraceMs,
    logger,
    submitOptions(req, signal) {
      const session = req.headers['x-session-id']
      // Each API key is a tenant: the limits of class 'default' (`hedgeyard limits set --key-class
      // default ...`) apply to each key on its own.
      const tenant = (req as FastifyRequest & { tenant?: string }).tenant
      return {
        timeoutMs,
        onSaturated: 'reject',
        onRateLimited: 'reject',
        ...(typeof session === 'string' ? { session } : {}),
        ...(tenant === undefined ? {} : { limitKey: tenant }),
        ...(signal ? { signal } : {}),
      }
    },
  }
  opsRoutes(app, ctx)
  seedRoutes(app, ctx)
  geminiRoutes(app, ctx)
  if (hasDashboard)
    mountDashboard(app, { redis: options.redis, pool: options.pool, prefix: o.prefix, keys, logger })

  const config = {
    redis:
      typeof options.redis === 'string'
        ? maskUrl(options.redis)
        : 'url' in options.redis
          ? maskUrl(options.redis.url)
          : Array.isArray((options.redis as { cluster?: unknown }).cluster)
            ? `a cluster of ${(options.redis as { cluster: string[] }).cluster.join(',')}`
            : '(an ioredis client)',
    pool: options.pool,
    ...(options.cells === undefined ? {} : { cells: options.cells }),
    prefix: o.prefix,
    host: o.host,
    port,
    apiKeys:
      keys.count === 0
        ? o.insecureNoAuth
          ? 'none (--insecure-no-auth)'
          : 'none (loopback only)'
        : `${keys.count} (hashed)`,
    jobTtlMs,
    timeoutMs,
    maxBodyBytes,
    disconnectGraceMs,
    dashboard: hasDashboard ? '/dashboard' : o.dashboard ? 'off (cells: one dashboard per cell)' : 'off',
  }
  return {
    app,
    dispatcher,
    config,
    async listen() {
      const url = await app.listen({ port, host: o.host })
      logger.info({ config, url }, 'gateway listening')
      return url
    },
    async close() {
      await app.close()
      await dispatcher.close()
    },
  }
}
