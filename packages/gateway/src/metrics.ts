import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

/** The gateway's Prometheus metrics, on a registry of its own (`GET /metrics`). */
export interface GatewayMetrics {
  registry: Registry
  requests: Counter<'route' | 'code'>
  duration: Histogram<'route'>
  openStreams: Gauge
}

/**
 * Makes the gateway's metrics: names in base units with the `hedgeyard_gateway_` prefix, no ids as
 * labels; and the process's own (`process_resident_memory_bytes`, `nodejs_eventloop_lag_*`...).
 */
export function createMetrics(): GatewayMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return {
    registry,
    requests: new Counter({
      name: 'hedgeyard_gateway_requests_total',
      help: 'HTTP requests answered, by route and status code',
      labelNames: ['route', 'code'],
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'hedgeyard_gateway_request_duration_seconds',
      help: 'Time to answer a request (to its last byte for a stream), by route',
      labelNames: ['route'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120],
      registers: [registry],
    }),
    openStreams: new Gauge({
      name: 'hedgeyard_gateway_open_streams',
      help: 'Server-sent event streams open now',
      registers: [registry],
    }),
  }
}
