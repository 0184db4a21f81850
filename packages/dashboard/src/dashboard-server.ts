import Fastify, { type FastifyInstance } from 'fastify'
import { dashboardRoutes } from './dashboard-routes.js'
import type { DashboardOptions } from './options.js'

/** Options of {@link createDashboardServer}: the dashboard's, and where to listen. */
export interface DashboardServerOptions extends Omit<DashboardOptions, 'basePath'> {
  /** @defaultValue 8090 */
  port?: number
  /** @defaultValue '127.0.0.1' */
  host?: string
}

/** A dashboard on its own HTTP server. */
export interface DashboardServer {
  readonly app: FastifyInstance
  /** Listens; resolves with the page's URL. */
  listen(): Promise<string>
  /** Ends the event streams, stops polling and closes the server. */
  close(): Promise<void>
}

/**
 * Makes a server with nothing but the dashboard, at `/` (what `hedgeyard dashboard` runs). It has
 * no authentication of its own: keep it on a loopback address, or mount {@link dashboardRoutes}
 * behind one (the gateway does).
 * @throws HedgeyardError INVALID_ARGUMENT naming a bad option.
 */
export function createDashboardServer(options: DashboardServerOptions): DashboardServer {
  const { port = 8090, host = '127.0.0.1', ...dashboard } = options
  // Requests are not logged (a page makes one a second); the feed logs to `logger`.
  const app = Fastify({ logger: false })
  dashboardRoutes(app, dashboard)
  return {
    app,
    async listen() {
      const address = await app.listen({ port, host })
      return `${address}/`
    },
    close: () => app.close(),
  }
}
