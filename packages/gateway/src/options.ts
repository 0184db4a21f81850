import type { DispatcherOptions } from 'hedgeyard'
import type { Logger } from 'pino'

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /** A Redis URL, or an ioredis client. */
  redis: DispatcherOptions['redis']
  /** The pool whose workers run the requests. */
  pool: string
  /**
   * The pool is a logical pool over this many cells (docs/cells.md): requests go through a
   * CellDispatcher, and the dashboard is off (it shows one pool).
   */
  cells?: number
  /** @defaultValue 'hy' */
  prefix?: string
  /** @defaultValue 8080 */
  port?: number
  /** The address to listen on; anything but loopback needs API keys (or `insecureNoAuth`). @defaultValue '127.0.0.1' */
  host?: string
  /** API keys, `<tenant>:<key>` or `<key>`, comma-separated (HEDGEYARD_API_KEYS). */
  apiKeys?: string
  /** A file of API keys, one per line, same forms (HEDGEYARD_API_KEYS_FILE). */
  apiKeysFile?: string
  /** Serve without API keys on a non-loopback address. @defaultValue false */
  insecureNoAuth?: boolean
  /** How long a job's state and result stay readable (`GET /jobs/:id`, resume). @defaultValue 3600000 */
  jobTtlMs?: number
  /** Time limit of one request's generation, from dispatch to its last chunk. @defaultValue 120000 */
  timeoutMs?: number
  /** Largest request body. @defaultValue 1048576 */
  maxBodyBytes?: number
  /**
   * How long a server-sent event stream whose client went away waits for the client to come back
   * (with Last-Event-ID, to any instance) before it cancels the job. @defaultValue 5000
   */
  disconnectGraceMs?: number
  /** Serve the pool's live dashboard under /dashboard, behind the API keys. @defaultValue true */
  dashboard?: boolean
  /** A pino logger; the gateway logs each request at debug (its route, code and time), never bodies or keys. */
  logger?: Logger
}

/** Defaults of {@link GatewayOptions}. */
export const GATEWAY_DEFAULTS = Object.freeze({
  prefix: 'hy',
  port: 8080,
  host: '127.0.0.1',
  insecureNoAuth: false,
  jobTtlMs: 3_600_000,
  timeoutMs: 120_000,
  maxBodyBytes: 1_048_576,
  disconnectGraceMs: 5_000,
  dashboard: true,
})

/** Whether an address only accepts connections from this host. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.')
}

/** A Redis URL with its password masked, for logs. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password !== '') u.password = '****'
    return u.toString()
  } catch {
    // A cluster URL (`redis+cluster://user:password@h1:7000,h2:7000`) is no WHATWG URL.
    return url.startsWith('redis+cluster://') || url.startsWith('rediss+cluster://')
      ? url.replace(/:[^:@/]*@/, ':****@')
      : '(not a URL)'
  }
}
