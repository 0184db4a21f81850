import type { IncomingMessage, ServerResponse } from 'node:http'
import { googleError, retryInfo } from './google-error.js'

/** The largest request body the simulator reads (the API's limit for inline data). */
export const MAX_BODY_BYTES = 20 * 1024 * 1024

/** Reading a body failed: it was larger than the limit. */
export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge'
}

/** Reads a request's body as UTF-8. @throws BodyTooLarge past `maxBytes`. */
export async function readBody(req: IncomingMessage, maxBytes = MAX_BODY_BYTES): Promise<string> {
  const parts: Buffer[] = []
  let size = 0
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length
    if (size > maxBytes) {
      throw new BodyTooLarge(`Request payload size exceeds the limit: ${maxBytes} bytes.`)
    }
    parts.push(part)
  }
  return Buffer.concat(parts).toString('utf8')
}

/** Answers `body` as JSON. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body)
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  })
  res.end(text)
}

/** Answers a Google error; a 429 with a delay carries it as RetryInfo and as `Retry-After` (whole seconds). */
export function sendError(
  res: ServerResponse,
  status: number,
  message?: string,
  retryAfterMs?: number,
): void {
  const details = retryAfterMs === undefined ? undefined : [retryInfo(retryAfterMs)]
  const headers: Record<string, string> =
    retryAfterMs === undefined ? {} : { 'retry-after': String(Math.ceil(retryAfterMs / 1000)) }
  sendJson(res, status, googleError(status, message, details), headers)
}
