import { randomBytes } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { BodyTooLarge, readBody, sendError, sendJson } from './http-io.js'
import { sampleFirstTokenMs } from './latency.js'
import { countWords, fakeGeminiText, splitReply } from './reply.js'
import { InvalidRequest, parseRequest, type SimulatedRequest } from './request.js'
import { type AnswerInfo, responseFor } from './responses.js'
import type { SimulatorState } from './simulator-state.js'

/** The model methods the simulator answers, as the API names them. */
export type ModelMethod = 'generateContent' | 'streamGenerateContent'

const MODEL_PATH = /^\/(v1beta|v1)\/models\/([^/:]+):(generateContent|streamGenerateContent)$/

/** The model and method a path names (`/v1beta/models/<model>:<method>`), or undefined. */
export function matchModelPath(pathname: string): { model: string; method: ModelMethod } | undefined {
  const match = MODEL_PATH.exec(pathname)
  if (!match) return undefined
  return { model: match[2] as string, method: match[3] as ModelMethod }
}

const NO_KEY_MESSAGE =
  "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API."

/**
 * Answers one model request: the checks in the API's order (body, key, shape), then an injected
 * failure or the quota, then the answer after the sampled latency, whole or streamed.
 */
export async function serveModel(
  state: SimulatorState,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  route: { model: string; method: ModelMethod },
): Promise<void> {
  const arrivedMs = Date.now()
  const reject = (status: number, message: string) => {
    state.stats.count('rejected', arrivedMs)
    sendError(res, status, message)
  }
  let body: string
  try {
    body = await readBody(req)
  } catch (err) {
    if (err instanceof BodyTooLarge) return reject(400, err.message)
    throw err
  }
  const header = req.headers['x-goog-api-key']
  const key = (typeof header === 'string' ? header : undefined) || url.searchParams.get('key')
  if (!key) return reject(403, NO_KEY_MESSAGE)
  let request: SimulatedRequest
  try {
    request = parseRequest(body)
  } catch (err) {
    if (err instanceof InvalidRequest) return reject(400, err.message)
    throw err
  }
  const nowMs = Date.now()
  const injected = state.injectedFailure(nowMs)
  if (injected) {
    state.stats.count('failed', arrivedMs)
    return sendError(res, injected.status, undefined, injected.retryAfterMs)
  }
  const quotaRps = state.behaviour.quotaRps
  const waitMs = state.quota.take(key, quotaRps, nowMs)
  if (waitMs > 0) {
    state.stats.count('rateLimited', arrivedMs)
    const message = `Quota exceeded for this API key: ${quotaRps} generate requests per second. Please retry in ${(waitMs / 1000).toFixed(3)}s.`
    return sendError(res, 429, message, waitMs)
  }
  state.stats.count('accepted', arrivedMs)
  state.stats.inflight++
  const stop = new AbortController()
  const onClose = () => stop.abort()
  res.once('close', onClose)
  state.closing.signal.addEventListener('abort', onClose)
  try {
    await answer(state, res, url, route, request, stop.signal)
  } catch (err) {
    // The client left, or the server is closing: the answer simply stops.
    if (!stop.signal.aborted) throw err
    res.destroy()
  } finally {
    state.stats.inflight--
    state.closing.signal.removeEventListener('abort', onClose)
  }
}

async function answer(
  state: SimulatorState,
  res: ServerResponse,
  url: URL,
  route: { model: string; method: ModelMethod },
  request: SimulatedRequest,
  signal: AbortSignal,
): Promise<void> {
  const behaviour = state.behaviour
  const words = Math.min(behaviour.replyWords, request.maxOutputTokens ?? behaviour.replyWords)
  const text = fakeGeminiText(request.prompt, words)
  const pieces = splitReply(text, behaviour.chunkWords)
  const info: AnswerInfo = {
    model: route.model,
    responseId: randomBytes(12).toString('base64url'),
    promptTokens: countWords(request.prompt),
    finishReason: words < behaviour.replyWords ? 'MAX_TOKENS' : 'STOP',
  }
  const gapMs = behaviour.tokensPerSecond > 0 ? (behaviour.chunkWords / behaviour.tokensPerSecond) * 1000 : 0
  await sleep(sampleFirstTokenMs(behaviour), undefined, { signal })
  if (route.method === 'generateContent') {
    // A unary answer comes when a stream of it would have ended.
    if (pieces.length > 1) await sleep(gapMs * (pieces.length - 1), undefined, { signal })
    return sendJson(res, 200, responseFor(info, text, words, true))
  }
  // alt=sse frames each chunk as a server-sent event; without it the API streams one JSON array.
  const isSse = url.searchParams.get('alt') === 'sse'
  res.writeHead(200, {
    'content-type': isSse ? 'text/event-stream' : 'application/json; charset=UTF-8',
    'cache-control': 'no-cache',
  })
  let sent = 0
  for (const [i, piece] of pieces.entries()) {
    if (i > 0) await sleep(gapMs, undefined, { signal })
    sent += countWords(piece)
    const json = JSON.stringify(responseFor(info, piece, sent, i === pieces.length - 1))
    if (isSse) res.write(`data: ${json}\n\n`)
    else res.write(`${i === 0 ? '[' : ',\r\n'}${json}`)
  }
  res.end(isSse ? undefined : ']')
}
