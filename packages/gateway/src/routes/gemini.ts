import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { JobStream } from 'hedgeyard'
import { type RouteContext, sendFailure } from '../gateway.js'
import { failure, googleError, httpFailureOf } from '../google-error.js'
import { checkGenerateBody, parseModelMethod } from '../request-body.js'

/** An AbortController aborted when the client goes away before its answer is complete. */
function abortOnDisconnect(reply: FastifyReply): AbortController {
  const ctrl = new AbortController()
  reply.raw.on('close', () => {
    if (!reply.raw.writableEnded) ctrl.abort(new Error('the client disconnected'))
  })
  return ctrl
}

/** `Last-Event-ID: <jobId>:<seq>`, as this gateway numbers its events. */
function parseLastEventId(value: string): { jobId: string; after: number } | undefined {
  const colon = value.lastIndexOf(':')
  if (colon <= 0) return undefined
  const after = Number(value.slice(colon + 1))
  if (!Number.isSafeInteger(after) || after < 0) return undefined
  return { jobId: value.slice(0, colon), after }
}

/**
 * Gemini's REST endpoints, on `/v1beta/models/{model}:{method}` and `/v1/models/...`:
 * `generateContent` answers the whole response; `streamGenerateContent?alt=sse` sends each chunk as
 * a server-sent event as the worker yields it, each preceded by an `id: <jobId>:<seq>` block of its
 * own (the Gemini SDK reads every `data:` as JSON, so the id cannot share its event), and a client
 * reconnecting with that `Last-Event-ID`, to any instance, continues after it. A client that goes
 * away cancels its job (a stream's, after a grace period in which it may come back).
 */
export function geminiRoutes(app: FastifyInstance, ctx: RouteContext): void {
  const handler = async (req: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) => {
    const target = parseModelMethod(req.params['*'])
    if (target === undefined) {
      return sendFailure(reply, failure(404, `no model method at ${req.url.split('?')[0]}`))
    }
    if (target.method !== 'generateContent' && target.method !== 'streamGenerateContent') {
      return sendFailure(reply, failure(404, `method '${target.method}' is not served here`))
    }
    let body: Record<string, unknown>
    try {
      body = checkGenerateBody(req.body, target.model)
    } catch (err) {
      return sendFailure(reply, failure(400, (err as Error).message))
    }
    if (target.method === 'generateContent') {
      const ctrl = abortOnDisconnect(reply)
      try {
        return await ctx.dispatcher.submit(body, ctx.submitOptions(req, ctrl.signal))
      } catch (err) {
        return sendFailure(reply, httpFailureOf(err))
      }
    }
    const isSse = (req.query as Record<string, unknown>).alt === 'sse'
    // An SSE client that goes away may come back elsewhere with Last-Event-ID: its job is cancelled
    // only after a grace period (sendEvents). Any other client's, at once, through the signal.
    const signal = isSse ? undefined : abortOnDisconnect(reply).signal
    const lastEventId = req.headers['last-event-id']
    let stream: JobStream
    let resumesBefore = 0
    try {
      if (typeof lastEventId === 'string' && lastEventId !== '') {
        const from = parseLastEventId(lastEventId)
        if (from === undefined) return sendFailure(reply, failure(400, 'Last-Event-ID must be <jobId>:<seq>'))
        stream = ctx.dispatcher.resume(from.jobId, {
          after: from.after,
          timeoutMs: ctx.timeoutMs,
          ...(signal ? { signal } : {}),
        })
        await stream.queued
        resumesBefore = await ctx.dispatcher.resumes(from.jobId)
      } else {
        stream = ctx.dispatcher.stream(body, ctx.submitOptions(req, signal))
        await stream.queued
      }
    } catch (err) {
      return sendFailure(reply, httpFailureOf(err))
    }
    if (!isSse) {
      // Without alt=sse the API answers one JSON array of the chunks.
      try {
        const chunks: unknown[] = []
        for await (const chunk of stream) chunks.push(chunk.data)
        return chunks
      } catch (err) {
        return sendFailure(reply, httpFailureOf(err))
      }
    }
    return sendEvents(reply, stream, ctx, resumesBefore)
  }
  app.post('/v1beta/models/*', handler)
  app.post('/v1/models/*', handler)
}

/**
 * Writes a stream as server-sent events; an error after the first event travels as an error event.
 * When the client goes away, the stream is read on without writing, and after the grace period the
 * job is cancelled unless it was resumed meanwhile (`resumesBefore`: the count this one started at).
 */
async function sendEvents(
  reply: FastifyReply,
  stream: JobStream,
  ctx: RouteContext,
  resumesBefore: number,
): Promise<void> {
  const started = performance.now()
  reply.hijack()
  const raw = reply.raw
  let isGone = false
  raw.on('close', () => {
    if (raw.writableEnded) return
    isGone = true
    setTimeout(() => {
      ctx.dispatcher
        .resumes(stream.jobId)
        .then((now) => (now > resumesBefore ? 'resumed' : ctx.dispatcher.cancel(stream.jobId)))
        .catch((err: unknown) =>
          ctx.logger.warn({ err, jobId: stream.jobId }, 'could not cancel a left stream'),
        )
    }, ctx.disconnectGraceMs).unref()
  })
  raw.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  })
  ctx.metrics.openStreams.inc()
  let code = 200
  try {
    for await (const chunk of stream) {
      if (isGone) continue
      raw.write(`id: ${stream.jobId}:${chunk.seq}\n\n`)
      raw.write(`data: ${JSON.stringify(chunk.data)}\n\n`)
    }
  } catch (err) {
    const f = httpFailureOf(err)
    code = f.httpCode
    if (!isGone) raw.write(`data: ${JSON.stringify(googleError(f))}\n\n`)
  } finally {
    ctx.metrics.openStreams.dec()
    ctx.metrics.requests.inc({ route: '/v1beta/models/*', code: String(code) })
    ctx.metrics.duration.observe({ route: '/v1beta/models/*' }, (performance.now() - started) / 1_000)
    raw.end()
  }
}
