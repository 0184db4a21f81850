import { type Fetch, GoogleGenAI, type GoogleGenAIOptions } from '@google/genai'
import type { JobContext } from 'hedgeyard'
import { aggregateChunks, type GenaiResponse, plainResponse } from './aggregate.js'
import { type GenaiHandlerOptions, type ResolvedGenaiOptions, resolveGenaiOptions } from './options.js'
import { type GenaiRequest, toGenerateParams } from './request.js'
import { toUpstreamError } from './upstream-error.js'

/**
 * A Hedgeyard handler that calls Gemini: it streams the answer, yielding each chunk (a
 * GenerateContentResponse) as the model sends it, and returns the whole response. A caller of
 * `dispatcher.stream` gets the chunks; a caller of `submit` gets the whole response.
 */
export type GenaiHandler = (
  req: GenaiRequest,
  ctx: Pick<JobContext, 'signal'>,
) => AsyncGenerator<GenaiResponse, GenaiResponse, undefined>

/**
 * Makes a handler that calls the model through `@google/genai`, with the SDK's own retries off
 * (Hedgeyard decides what is retried, and where), and `ctx.signal` aborting the call.
 * Failures: a 429, 503 or other transient code, or an unreachable API, throws a retryable
 * `UpstreamError` (with `retryAfterMs` when the API gave a delay); other 4xx throw a
 * non-retryable one naming the code; a malformed request throws a `TypeError`.
 * @throws Error when the options and the environment give no key (or no Vertex AI project).
 */
export function createGenaiHandler(options: GenaiHandlerOptions = {}): GenaiHandler {
  const settings = resolveGenaiOptions(options)
  const ai = new GoogleGenAI(clientOptions(settings))
  return async function* genai(req, ctx) {
    const params = toGenerateParams(req, settings.model)
    // The SDK's errors carry the body but not the headers: this keeps the failed reply's Retry-After.
    let retryAfter: string | null = null
    const keepRetryAfter: Fetch = async (input, init) => {
      const res = await fetch(input, init)
      if (!res.ok) retryAfter = res.headers.get('retry-after')
      return res
    }
    params.config = { ...params.config, abortSignal: ctx.signal, httpOptions: { fetch: keepRetryAfter } }
    const chunks: GenaiResponse[] = []
    try {
      for await (const response of await ai.models.generateContentStream(params)) {
        const chunk = plainResponse(response)
        chunks.push(chunk)
        yield chunk
      }
    } catch (err) {
      throw toUpstreamError(err, retryAfter)
    }
    return aggregateChunks(chunks)
  }
}

function clientOptions(settings: ResolvedGenaiOptions): GoogleGenAIOptions {
  const httpOptions = {
    // One attempt: a retry belongs to the dispatcher, which can send it to another worker.
    retryOptions: { attempts: 1 },
    ...(settings.baseUrl === undefined ? {} : { baseUrl: settings.baseUrl }),
  }
  if (!settings.vertexai) return { vertexai: false, apiKey: settings.apiKey as string, httpOptions }
  // Vertex AI takes a project and location, or else an API key (express mode), not both.
  if (settings.project) {
    return {
      vertexai: true,
      project: settings.project,
      ...(settings.location === undefined ? {} : { location: settings.location }),
      httpOptions,
    }
  }
  return { vertexai: true, apiKey: settings.apiKey as string, httpOptions }
}

let shared: GenaiHandler | undefined

/**
 * The handler `hedgeyard worker --handler @hedgeyard/genai` runs: {@link createGenaiHandler}
 * with the environment's settings, made at the first job (so that importing the package for
 * something else needs no key).
 */
export async function* genaiHandler(
  req: GenaiRequest,
  ctx: Pick<JobContext, 'signal'>,
): AsyncGenerator<GenaiResponse, GenaiResponse, undefined> {
  shared ??= createGenaiHandler()
  return yield* shared(req, ctx)
}
