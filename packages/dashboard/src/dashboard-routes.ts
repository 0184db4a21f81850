import type { ServerResponse } from 'node:http'
import type { FastifyError, FastifyInstance } from 'fastify'
import { isHedgeyardError } from 'hedgeyard'
import { actionRoutes, sendError } from './actions.js'
import { eventStreamRoute } from './event-stream.js'
import { type DashboardOptions, resolveOptions } from './options.js'
import { loadAssets, pageRoutes } from './page-routes.js'
import { SnapshotFeed } from './snapshot-feed.js'

/** The HTTP status of a Hedgeyard error code. */
function statusOf(code: string): number {
  if (code === 'INVALID_ARGUMENT') return 400
  if (code === 'NOT_FOUND') return 404
  return code.startsWith('REDIS_') ? 503 : 500
}

/**
 * Serves the live dashboard of a pool under `basePath` of `app`: the page (`<base>/`), its
 * server-sent events (`<base>/events`, a `snapshot` per interval) and its actions
 * (`<base>/api/drain`, `<base>/api/dead`, `<base>/api/dead/retry`, `<base>/api/dead/purge`).
 * Registers an encapsulated plugin: the app's own error handler and routes are left alone.
 * Authentication is the app's: put it in an `onRequest` hook.
 * @throws HedgeyardError INVALID_ARGUMENT naming a bad option.
 */
export function dashboardRoutes(app: FastifyInstance, options: DashboardOptions): void {
  const o = resolveOptions(options)
  const assets = loadAssets()
  app.register(
    async (scope) => {
      const feed = new SnapshotFeed(o.ref, o.intervalMs, o.logger ?? scope.log)
      const streams = new Set<ServerResponse>()
      // The event streams never end on their own: closing the server would wait for them.
      scope.addHook('preClose', async () => {
        for (const raw of streams) raw.end()
      })
      scope.addHook('onClose', () => feed.close())
      scope.setErrorHandler((err: FastifyError, _req, reply) => {
        if (isHedgeyardError(err)) return sendError(reply, statusOf(err.code), err.code, err.message)
        const status = typeof err.statusCode === 'number' && err.statusCode >= 400 ? err.statusCode : 500
        // Fastify's own 4xx: a body that is not JSON, too large, of another content type.
        if (status < 500) return sendError(reply, status, 'INVALID_ARGUMENT', err.message)
        ;(o.logger ?? scope.log).error({ err }, 'dashboard request failed')
        return sendError(reply, 500, 'ERROR', err.message)
      })
      pageRoutes(scope, assets)
      eventStreamRoute(scope, feed, streams)
      actionRoutes(scope, o.ref)
    },
    { prefix: o.basePath },
  )
}
