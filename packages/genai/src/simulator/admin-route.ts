import type { IncomingMessage, ServerResponse } from 'node:http'
import { BodyTooLarge, readBody, sendError, sendJson } from './http-io.js'
import type { SimulatorState } from './simulator-state.js'

/** The prefix of the admin endpoints; no model path starts with it. */
export const ADMIN_PREFIX = '/_sim/'

const MAX_ADMIN_BODY_BYTES = 64 * 1024

/**
 * The admin endpoints, all JSON:
 * `GET /_sim/stats`, `GET|POST /_sim/config` (a partial behaviour), `POST /_sim/outage`
 * `{"ms","status"?}`, `POST /_sim/fail` `{"count","status"?,"retryAfterMs"?}`, `POST /_sim/reset`.
 * A bad body or value answers 400 in the Google error shape.
 */
export async function serveAdmin(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  name: string,
): Promise<void> {
  const route = `${req.method ?? 'GET'} ${name}`
  if (route === 'GET stats') return sendJson(res, 200, state.stats.snapshot())
  if (route === 'GET config') return sendJson(res, 200, state.behaviour)
  const action = ADMIN_ACTIONS[route]
  if (!action) return sendError(res, 404, `No admin endpoint ${req.method} ${ADMIN_PREFIX}${name}.`)
  let body: Record<string, unknown>
  try {
    body = parseObject(await readBody(req, MAX_ADMIN_BODY_BYTES))
  } catch (err) {
    if (err instanceof BodyTooLarge || err instanceof SyntaxError || err instanceof TypeError) {
      return sendError(res, 400, err.message)
    }
    throw err
  }
  try {
    sendJson(res, 200, action(state, body))
  } catch (err) {
    if (!(err instanceof RangeError)) throw err
    sendError(res, 400, err.message)
  }
}

const ADMIN_ACTIONS: Record<string, (state: SimulatorState, body: Record<string, unknown>) => unknown> = {
  'POST config': (state, body) => state.configure(body),
  'POST outage': (state, body) => state.outage(body as { ms: number; status?: number }),
  'POST fail': (state, body) =>
    state.failNext(body as { count: number; status?: number; retryAfterMs?: number }),
  'POST reset': (state) => {
    state.reset()
    return { reset: true }
  },
}

/** An empty body is `{}`; anything else must be a JSON object. */
function parseObject(text: string): Record<string, unknown> {
  if (text.trim() === '') return {}
  const value: unknown = JSON.parse(text)
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError('The body must be a JSON object.')
  }
  return value as Record<string, unknown>
}
