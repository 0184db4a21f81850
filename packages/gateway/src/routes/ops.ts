import type { FastifyInstance } from 'fastify'
import { type RouteContext, sendFailure } from '../gateway.js'
import { failure, httpFailureOf } from '../google-error.js'

/** Health for load balancers, the seed's per-worker metrics, and Prometheus text. */
export function opsRoutes(app: FastifyInstance, ctx: RouteContext): void {
  app.get('/healthz', async () => ({ status: 'ok' }))

  // Ready: Redis answers and the pool has a live worker.
  app.get('/readyz', async (_req, reply) => {
    try {
      const alive = (await ctx.dispatcher.workerMetrics()).filter((w) => w.alive).length
      if (alive === 0)
        return sendFailure(reply, failure(503, `pool '${ctx.dispatcher.pool}' has no live worker`, 1))
      return { status: 'ready', workers: alive }
    } catch (err) {
      return sendFailure(reply, httpFailureOf(err))
    }
  })

  // The seed's fields (worker_id, inflight, queue_len, capacity, errors), then Hedgeyard's; over
  // cells, each worker's cell too.
  app.get('/workers', async () => {
    const workers = await ctx.dispatcher.workerMetrics()
    return workers.map((w) => ({
      worker_id: w.workerId,
      ...(w.cell === undefined ? {} : { cell: w.cell }),
      inflight: w.inflight,
      queue_len: w.queueLen,
      capacity: w.capacity,
      errors: w.errors,
      alive: w.alive,
      state: w.state,
      concurrency: w.concurrency,
      processed: w.processed,
      host: w.host,
      pid: w.pid,
      cooling_ms: w.coolingMs,
      breaker: w.breaker,
    }))
  })

  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', ctx.metrics.registry.contentType)
    return ctx.metrics.registry.metrics()
  })
}
