import { spawn } from 'node:child_process'
import { GoogleGenAI } from '@google/genai'
import {
  createGenaiHandler,
  type FakeGemini,
  type FakeGeminiOptions,
  fakeGeminiText,
  type GenaiRequest,
  type GenaiResponse,
  startFakeGemini,
  UpstreamError,
} from '@hedgeyard/genai'
import {
  CLI,
  eventually,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, isHedgeyardError, type StreamChunk } from 'hedgeyard'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

/** A quick model: 24 words in chunks of 4, first token after 5 ms, the rest at 2,000 words/s. */
const QUICK: FakeGeminiOptions = {
  medianMs: 5,
  sigma: 0,
  tokensPerSecond: 2000,
  chunkWords: 4,
  replyWords: 24,
}
const MODEL = 'gemini-2.5-flash'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function simulator(options: FakeGeminiOptions = {}): Promise<FakeGemini> {
  const sim = await startFakeGemini({ ...QUICK, ...options })
  closers.push(() => sim.close())
  return sim
}

function sdk(sim: FakeGemini, apiKey = 'test-key', apiVersion?: string): GoogleGenAI {
  return new GoogleGenAI({ apiKey, httpOptions: { baseUrl: sim.url, ...(apiVersion ? { apiVersion } : {}) } })
}

function textOf(response: GenaiResponse): string {
  return (response.candidates?.[0]?.content?.parts ?? []).map((p) => p.text ?? '').join('')
}

function ask(text: string): GenaiRequest {
  return { contents: [{ role: 'user', parts: [{ text }] }] }
}

/** The parts of a Google error body the tests read. */
interface ErrorReply {
  error: { code: number; status: string; message: string; details: { '@type': string; retryDelay: string }[] }
}

/** Posts a raw REST request, as curl would. */
async function post(sim: FakeGemini, path: string, body: string, apiKey = 'test-key') {
  const res = await fetch(`${sim.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(apiKey ? { 'x-goog-api-key': apiKey } : {}) },
    body,
  })
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    json: (await res.json()) as ErrorReply,
  }
}

/** Runs the handler to its end, as a worker does: its chunks, then its result or its error. */
async function runHandler(handler: ReturnType<typeof createGenaiHandler>, req: GenaiRequest) {
  const chunks: GenaiResponse[] = []
  const it = handler(req, { signal: new AbortController().signal })
  try {
    for (;;) {
      const step = await it.next()
      if (step.done) return { chunks, result: step.value, error: undefined }
      chunks.push(step.value)
    }
  } catch (error) {
    return { chunks, result: undefined, error }
  }
}

const GENERATE = `/v1beta/models/${MODEL}:generateContent`

describe('the fake Gemini API', () => {
  it('answers the official SDK with text derived from the prompt, whole and streamed', async () => {
    const sim = await simulator()
    const ai = sdk(sim)
    const prompt = 'Name three rivers.'
    const expected = fakeGeminiText(prompt, 24)
    expect(expected.split(' ')).toHaveLength(24)

    const whole = await ai.models.generateContent({ model: MODEL, contents: prompt })
    expect(whole.text).toBe(expected)
    expect(whole.candidates?.[0]?.finishReason).toBe('STOP')
    expect(whole.usageMetadata).toMatchObject({
      promptTokenCount: 3,
      candidatesTokenCount: 24,
      totalTokenCount: 27,
    })
    expect(whole.modelVersion).toBe(MODEL)
    // The same prompt gets the same answer, another prompt another one, on /v1 as on /v1beta.
    const again = await sdk(sim, 'test-key', 'v1').models.generateContent({ model: MODEL, contents: prompt })
    expect(again.text).toBe(expected)
    const other = await ai.models.generateContent({ model: MODEL, contents: 'Name three lakes.' })
    expect(other.text).not.toBe(expected)

    const chunks: GenaiResponse[] = []
    for await (const chunk of await ai.models.generateContentStream({ model: MODEL, contents: prompt })) {
      chunks.push(chunk)
    }
    expect(chunks).toHaveLength(6)
    expect(chunks.map(textOf).join('')).toBe(expected)
    expect(chunks.map((c) => c.candidates?.[0]?.finishReason)).toEqual([...Array(5).fill(undefined), 'STOP'])
    expect(chunks.at(-1)?.usageMetadata?.candidatesTokenCount).toBe(24)

    const cut = await ai.models.generateContent({
      model: MODEL,
      contents: prompt,
      config: { maxOutputTokens: 5 },
    })
    expect(cut.text).toBe(fakeGeminiText(prompt, 5))
    expect(cut.candidates?.[0]?.finishReason).toBe('MAX_TOKENS')
  })

  it('refuses requests beyond the per-key quota with 429, RetryInfo and Retry-After', async () => {
    const sim = await simulator({ quotaRps: 2 })
    const body = JSON.stringify(ask('hi'))
    const replies = await Promise.all(Array.from({ length: 5 }, () => post(sim, GENERATE, body, 'key-a')))
    const statuses = replies.map((r) => r.status).sort()
    expect(statuses).toEqual([200, 200, 429, 429, 429])
    for (const refused of replies.filter((r) => r.status === 429)) {
      expect(refused.retryAfter).toBe('1')
      expect(refused.json.error).toMatchObject({ code: 429, status: 'RESOURCE_EXHAUSTED' })
      const detail = refused.json.error.details[0]
      expect(detail?.['@type']).toBe('type.googleapis.com/google.rpc.RetryInfo')
      const seconds = Number(detail?.retryDelay.replace(/s$/, ''))
      expect(seconds).toBeGreaterThan(0)
      expect(seconds).toBeLessThanOrEqual(1)
    }
    // The quota is per key: another key is still served.
    expect((await post(sim, GENERATE, body, 'key-b')).status).toBe(200)
    const { totals, perSecond } = sim.stats()
    expect(totals).toMatchObject({ requests: 6, accepted: 3, rateLimited: 3, failed: 0, rejected: 0 })
    expect(perSecond.reduce((sum, s) => sum + s.accepted, 0)).toBe(3)

    // Through the handler, a refusal is a retryable UpstreamError carrying the delay.
    const handler = createGenaiHandler({ apiKey: 'key-c', baseUrl: sim.url, env: {} })
    const runs = await Promise.all([1, 2, 3].map(() => runHandler(handler, ask('hi'))))
    const errors = runs.map((r) => r.error).filter((e) => e !== undefined)
    expect(errors).toHaveLength(1)
    const [error] = errors
    expect(error).toBeInstanceOf(UpstreamError)
    expect(error).toMatchObject({ status: 429, retryable: true })
    expect((error as UpstreamError).retryAfterMs).toBeGreaterThan(0)
    expect((error as UpstreamError).retryAfterMs).toBeLessThanOrEqual(1000)
    expect((error as Error).message).toContain('429 RESOURCE_EXHAUSTED')
  })

  it('answers 503 to everything during an outage ordered on its admin endpoint, then recovers', async () => {
    const sim = await simulator()
    const handler = createGenaiHandler({ apiKey: 'k', baseUrl: sim.url, env: {} })
    const ordered = await fetch(`${sim.url}/_sim/outage`, {
      method: 'POST',
      body: '{"ms":1500,"status":503}',
    })
    expect(ordered.status).toBe(200)

    const during = await post(sim, GENERATE, JSON.stringify(ask('hi')))
    expect(during.status).toBe(503)
    expect(during.json.error).toMatchObject({ code: 503, status: 'UNAVAILABLE' })
    const failed = await runHandler(handler, ask('hi'))
    expect(failed.error).toBeInstanceOf(UpstreamError)
    expect(failed.error).toMatchObject({ status: 503, retryable: true })

    const recovered = await eventually(async () => (await runHandler(handler, ask('hi'))).result, 5_000, 50)
    expect(textOf(recovered as GenaiResponse)).toBe(fakeGeminiText('hi', 24))

    // A burst: the next two requests fail, the third is served.
    await fetch(`${sim.url}/_sim/fail`, { method: 'POST', body: '{"count":2,"status":500}' })
    const burst = []
    for (let i = 0; i < 3; i++) burst.push((await post(sim, GENERATE, JSON.stringify(ask('hi')))).status)
    expect(burst).toEqual([500, 500, 200])
    expect(sim.stats().totals.failed).toBeGreaterThanOrEqual(4)
  })

  it('answers 400 in the Google shape to bad JSON or a bad request, which the handler does not retry', async () => {
    const sim = await simulator()
    const notJson = await post(sim, GENERATE, '{"contents": [')
    expect(notJson.status).toBe(400)
    expect(notJson.json.error).toMatchObject({ code: 400, status: 'INVALID_ARGUMENT' })
    expect(notJson.json.error.message).toContain('Invalid JSON payload')
    const noContents = await post(sim, GENERATE, '{"prompt":"hi"}')
    expect(noContents.status).toBe(400)
    expect(noContents.json.error.message).toContain('contents')
    const badPart = await post(sim, GENERATE, '{"contents":[{"parts":[{"text":5}]}]}')
    expect(badPart.status).toBe(400)
    const noKey = await post(sim, GENERATE, JSON.stringify(ask('hi')), '')
    expect(noKey.status).toBe(403)
    expect(noKey.json.error.status).toBe('PERMISSION_DENIED')

    const handler = createGenaiHandler({ apiKey: 'k', baseUrl: sim.url, env: {} })
    const badRole = await runHandler(handler, { contents: [{ role: 'robot', parts: [{ text: 'hi' }] }] })
    expect(badRole.error).toBeInstanceOf(UpstreamError)
    expect(badRole.error).toMatchObject({ status: 400, retryable: false })
    expect((badRole.error as Error).message).toContain('400 INVALID_ARGUMENT')
    expect(sim.stats().totals.rejected).toBe(5)
  })

  it('runs as `hedgeyard fake-gemini` on the port it logs, and stops on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [CLI, 'fake-gemini', '--port', '0', '--median-ms', '1', '--sigma', '0', '--tokens-per-second', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    closers.push(async () => child.kill('SIGKILL'))
    let output = ''
    child.stdout.on('data', (d) => {
      output += d
    })
    child.stderr.on('data', (d) => {
      output += d
    })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    const url = await eventually(() => {
      const line = output.split('\n').find((l) => l.includes('fake Gemini listening'))
      return line ? (JSON.parse(line) as { url: string }).url : undefined
    }, 15_000)
    const ai = new GoogleGenAI({ apiKey: 'cli-key', httpOptions: { baseUrl: url as string } })
    const reply = await ai.models.generateContent({ model: MODEL, contents: 'from the CLI' })
    expect(reply.text).toBe(fakeGeminiText('from the CLI', 24))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  })
})

describe('a pool whose workers run --handler @hedgeyard/genai', () => {
  let sim: FakeGemini
  let worker: WorkerProcess
  let dispatcher: Dispatcher<GenaiRequest, GenaiResponse>

  beforeAll(async () => {
    sim = await startFakeGemini(QUICK)
    const pool = uniquePool('genai')
    worker = await spawnWorker({
      pool,
      handler: '@hedgeyard/genai',
      env: { GENAI_BASE_URL: sim.url, GEMINI_API_KEY: 'pool-key', MODEL_ID: 'gemini-2.5-flash-lite' },
    })
    dispatcher = new Dispatcher({ redis: redisUrl(), pool })
  })
  afterAll(async () => {
    await dispatcher?.close()
    await worker?.stop('SIGKILL')
    await sim?.close()
  })

  it('answers a submit with the whole response, and a stream with chunks that add up to it', async () => {
    const req = ask('Summarise the plot of Hamlet.')
    const expected = fakeGeminiText('Summarise the plot of Hamlet.', 24)

    const whole = await dispatcher.submit(req, { timeoutMs: 10_000 })
    expect(textOf(whole)).toBe(expected)
    expect(whole.candidates?.[0]?.finishReason).toBe('STOP')
    expect(whole.modelVersion).toBe('gemini-2.5-flash-lite')
    expect(whole.usageMetadata?.candidatesTokenCount).toBe(24)

    const stream = dispatcher.stream(req, { timeoutMs: 10_000 })
    const chunks: StreamChunk<GenaiResponse>[] = []
    for await (const chunk of stream) chunks.push(chunk as StreamChunk<GenaiResponse>)
    expect(chunks.length).toBeGreaterThanOrEqual(3)
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i + 1))
    expect(chunks.map((c) => textOf(c.data)).join('')).toBe(textOf(whole))
    expect(textOf(await stream.result)).toBe(expected)

    // A request may name its model.
    const pro = await dispatcher.submit({ ...req, model: 'gemini-2.5-pro' }, { timeoutMs: 10_000 })
    expect(pro.modelVersion).toBe('gemini-2.5-pro')
  })

  it('stops the model call when the caller leaves the stream', async () => {
    // 6 chunks a second apart: a call left running would stay in flight for 5 s more.
    sim.configure({ tokensPerSecond: 4 })
    try {
      const stream = dispatcher.stream(ask('a long story'), { timeoutMs: 20_000 })
      for await (const chunk of stream) {
        expect(textOf(chunk.data as GenaiResponse)).toBe(fakeGeminiText('a long story', 4))
        break
      }
      await expect(stream.result).rejects.toMatchObject({ code: 'CANCELLED' })
      await eventually(() => sim.stats().inflight === 0, 2_500)
    } finally {
      sim.configure({ tokensPerSecond: QUICK.tokensPerSecond as number })
    }
  })

  it('passes a 400 from the model on as a final HANDLER_ERROR, and a 429 as a retryable RATE_LIMITED', async () => {
    sim.failNext({ count: 1, status: 400 })
    const refused = await dispatcher.submit(ask('hi'), { timeoutMs: 10_000 }).catch((err: unknown) => err)
    expect(isHedgeyardError(refused, 'HANDLER_ERROR')).toBe(true)
    expect(refused).toMatchObject({ isRetryable: false, remoteName: 'UpstreamError' })
    expect((refused as Error).message).toContain('400 INVALID_ARGUMENT')

    // The handler reports the 429 with the delay the model asked for: the caller gets it back,
    // and may come back after it (the worker cools down meanwhile).
    sim.failNext({ count: 1, status: 429, retryAfterMs: 1500 })
    const limited = await dispatcher.submit(ask('hi'), { timeoutMs: 10_000 }).catch((err: unknown) => err)
    expect(isHedgeyardError(limited, 'RATE_LIMITED')).toBe(true)
    expect(limited).toMatchObject({ isRetryable: true, retryAfterMs: 1500, remoteName: 'UpstreamError' })
    expect((limited as Error).message).toContain('429 RESOURCE_EXHAUSTED')
  })
})
