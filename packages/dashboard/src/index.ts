export { dashboardRoutes } from './dashboard-routes.js'
export {
  createDashboardServer,
  type DashboardServer,
  type DashboardServerOptions,
} from './dashboard-server.js'
export { DASHBOARD_DEFAULTS, type DashboardOptions } from './options.js'
export type { PoolRates } from './rates.js'
export type { DashboardSnapshot, FeedMessage } from './snapshot-feed.js'
