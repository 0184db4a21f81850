import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { ADMIN_PREFIX, serveAdmin } from './admin-route.js'
import { sendError } from './http-io.js'
import { matchModelPath, serveModel } from './model-route.js'
import {
  defaultBehaviour,
  FAKE_GEMINI_DEFAULTS,
  type FakeGeminiBehaviour,
  type FakeGeminiOptions,
  mergeBehaviour,
} from './options.js'
import { type FailNextOptions, type OutageOptions, SimulatorState } from './simulator-state.js'
import type { FakeGeminiStats } from './stats.js'

/** A running simulator: its address, and the admin endpoints as methods. */
export interface FakeGemini {
  /** `http://<host>:<port>`: what `httpOptions.baseUrl` (or `GENAI_BASE_URL`) takes. */
  readonly url: string
  readonly port: number
  /** Every model request fails with `status` (503 by default) for `ms`; `ms: 0` ends an outage. */
  outage(options: OutageOptions): { status: number; untilMs: number }
  /** The next `count` model requests fail with `status` (503 by default). */
  failNext(options: FailNextOptions): { status: number; count: number; retryAfterMs?: number }
  /** Changes the behaviour from now on; returns the whole new behaviour. */
  configure(changes: Partial<FakeGeminiBehaviour>): FakeGeminiBehaviour
  /** The current behaviour. */
  behaviour(): FakeGeminiBehaviour
  /** Requests seen, in total and per second of arrival. */
  stats(): FakeGeminiStats
  /** Ends outages and bursts, forgets the quota windows and the counters. */
  reset(): void
  /** Stops listening and cuts the answers under way. */
  close(): Promise<void>
}

/**
 * Starts an HTTP server that answers the Gemini API's `generateContent` and
 * `streamGenerateContent` (`/v1beta/models/<model>:<method>`, `/v1/...` too) with deterministic
 * text derived from the prompt, after a simulated latency, under a per-key quota, with failures
 * on command. For demos, tests and benchmarks: point `@google/genai` at its `url`.
 * @throws RangeError for an unknown option or a value out of range.
 */
export async function startFakeGemini(options: FakeGeminiOptions = {}): Promise<FakeGemini> {
  const { port = FAKE_GEMINI_DEFAULTS.port, host = FAKE_GEMINI_DEFAULTS.host, ...changes } = options
  const state = new SimulatorState(mergeBehaviour(defaultBehaviour(), changes))
  const server = createServer((req, res) => {
    route(state, req, res).catch((err: unknown) => {
      if (res.headersSent) res.destroy()
      else sendError(res, 500, `The simulator failed: ${(err as Error).message}`)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${urlHost}:${address.port}`,
    port: address.port,
    outage: (o) => state.outage(o),
    failNext: (o) => state.failNext(o),
    configure: (c) => state.configure(c),
    behaviour: () => ({ ...state.behaviour }),
    stats: () => state.stats.snapshot(),
    reset: () => state.reset(),
    close: () =>
      new Promise<void>((resolve) => {
        state.closing.abort()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

async function route(state: SimulatorState, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://simulator')
  let pathname: string
  try {
    pathname = decodeURIComponent(url.pathname)
  } catch {
    return sendError(res, 400, 'The request path is not valid.')
  }
  if (pathname.startsWith(ADMIN_PREFIX)) {
    return serveAdmin(state, req, res, pathname.slice(ADMIN_PREFIX.length))
  }
  const model = matchModelPath(pathname)
  if (model && req.method === 'POST') return serveModel(state, req, res, url, model)
  sendError(res, 404, `No method ${req.method} ${pathname}.`)
}
