/**
 * What kind of Redis a test run uses: `HEDGEYARD_TEST_REDIS=cluster` runs the tests against a local
 * Redis Cluster (`npm test` runs the core, hedging and streaming files a second time so); unset, one
 * server. Read by the global setup and by tests that inspect one server's state.
 */
const kind = process.env.HEDGEYARD_TEST_REDIS ?? 'server'
if (kind !== 'server' && kind !== 'cluster')
  throw new Error(`HEDGEYARD_TEST_REDIS must be 'server' or 'cluster' (got ${kind})`)

/** Whether the run's Redis is a cluster. */
export const isClusterRun = kind === 'cluster'
