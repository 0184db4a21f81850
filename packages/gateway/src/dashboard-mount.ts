import { dashboardRoutes } from '@hedgeyard/dashboard'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { DispatcherOptions } from 'hedgeyard'
import type { ApiKeys } from './api-keys.js'

/** Where the gateway serves the dashboard. */
export const DASHBOARD_PATH = '/dashboard'
/** The cookie that carries a browser's API key, sent back only under {@link DASHBOARD_PATH}. */
const COOKIE = 'hy_dashboard_key'

function isDashboardPath(url: string): boolean {
  return (
    url === DASHBOARD_PATH || url.startsWith(`${DASHBOARD_PATH}/`) || url.startsWith(`${DASHBOARD_PATH}?`)
  )
}

/** The API key in the dashboard's cookie, for requests under /dashboard only. */
export function dashboardCookieKey(req: FastifyRequest): string | undefined {
  const header = req.headers.cookie
  if (typeof header !== 'string' || !isDashboardPath(req.url)) return undefined
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq < 0 || part.slice(0, eq).trim() !== COOKIE) continue
    try {
      return decodeURIComponent(part.slice(eq + 1).trim())
    } catch {
      return undefined
    }
  }
  return undefined
}

/** What the 401 of a request under /dashboard says: a browser cannot send the API key headers. */
export function dashboardKeyHint(url: string): string | undefined {
  return isDashboardPath(url)
    ? `an API key is required: open ${DASHBOARD_PATH}/?key=<API key> once (it is kept in a cookie), or send x-goog-api-key`
    : undefined
}

/**
 * Serves the pool's dashboard under /dashboard. The gateway's `onRequest` hook has checked the API
 * key already; here a valid key given as `?key=` becomes an HttpOnly, SameSite=Strict cookie
 * scoped to /dashboard, and the browser is sent to the same address without it (so that the key
 * stays out of the history, bookmarks and proxies' logs). The page's requests then carry the cookie,
 * including its event stream, which cannot send headers.
 */
export function mountDashboard(
  app: FastifyInstance,
  options: {
    redis: DispatcherOptions['redis']
    pool: string
    prefix: string
    keys: ApiKeys
    logger: FastifyBaseLogger
  },
): void {
  app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      const key = (req.query as Record<string, unknown> | undefined)?.key
      if (req.method !== 'GET' || typeof key !== 'string' || options.keys.tenantOf(key) === undefined) return
      const url = new URL(req.url, 'http://gateway')
      url.searchParams.delete('key')
      const secure = req.protocol === 'https' ? '; Secure' : ''
      reply.header(
        'set-cookie',
        `${COOKIE}=${encodeURIComponent(key)}; Path=${DASHBOARD_PATH}; HttpOnly; SameSite=Strict${secure}`,
      )
      return reply.redirect(`${url.pathname}${url.search}`, 303)
    })
    dashboardRoutes(scope, {
      redis: options.redis,
      pool: options.pool,
      prefix: options.prefix,
      basePath: DASHBOARD_PATH,
      logger: options.logger,
    })
  })
}
