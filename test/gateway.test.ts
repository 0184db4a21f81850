import { request as httpRequest } from 'node:http'
import { GoogleGenAI } from '@google/genai'
import { type FakeGemini, fakeGeminiText, startFakeGemini } from '@hedgeyard/genai'
import { type GatewayProcess, spawnGateway as startGateway } from '@hedgeyard/testing/gateway-process'
import {
  cleanupPool,
  client,
  eventually,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { cancelJob, clearPoolLimits, getJob, sessionCell, setPoolLimits } from 'hedgeyard'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const KEY = 'alice-key-0123456789abcdef'
const MODEL = 'gemini-2.5-flash'

/** Starts `hedgeyard gateway` on a free port, with alice's key, and waits for its URL. */
function spawnGateway(
  pool: string,
  extra: string[] = [],
  env: Record<string, string> = {},
): Promise<GatewayProcess> {
  return startGateway({ redis: redisUrl(), pool, extra, env: { HEDGEYARD_API_KEYS: `alice:${KEY}`, ...env } })
}

function sdk(gateway: GatewayProcess, apiKey = KEY): GoogleGenAI {
  return new GoogleGenAI({ apiKey, httpOptions: { baseUrl: gateway.url } })
}

function request(prompt: string) {
  return { contents: [{ role: 'user', parts: [{ text: prompt }] }] }
}

async function post(
  gateway: GatewayProcess,
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${gateway.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-goog-api-key': KEY, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
}

/** Reads server-sent events as an EventSource does: `id:` blocks set the last id, `data:` blocks are events. */
async function* events(res: Response): AsyncGenerator<{ lastId: string | undefined; data: unknown }> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let lastId: string | undefined
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      for (const line of block.split('\n')) {
        if (line.startsWith('id: ')) lastId = line.slice(4)
        if (line.startsWith('data: ')) yield { lastId, data: JSON.parse(line.slice(6)) }
      }
      end = buffer.indexOf('\n\n')
    }
  }
}

/**
 * Starts posting a JSON body of `bytes` with node:http and reads the answer: the gateway answers 413
 * from the declared length, without reading the body (fetch, which writes it all first, sees the
 * connection close under it instead).
 */
function postLarge(gateway: GatewayProcess, path: string, bytes: number): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${gateway.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': bytes, 'x-goog-api-key': KEY },
    })
    req.on('response', (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => {
        resolve(new Response(Buffer.concat(parts), { status: res.statusCode ?? 0 }))
        req.destroy()
      })
    })
    req.on('error', reject)
    req.write(`{"contents":"${'x'.repeat(65_536)}`)
  })
}

function textOf(response: unknown): string {
  const parts = (response as { candidates?: { content?: { parts?: { text?: string }[] } }[] }).candidates?.[0]
    ?.content?.parts
  return (parts ?? []).map((p) => p.text ?? '').join('')
}

describe('the gateway, with the official Gemini SDK, two instances and a worker process', () => {
  const pool = uniquePool('gateway')
  let sim: FakeGemini
  let worker: WorkerProcess
  let a: GatewayProcess
  let b: GatewayProcess

  beforeAll(async () => {
    // 24 words in chunks of 4 at 200 words a second: a stream lasts about 120 ms.
    sim = await startFakeGemini({
      medianMs: 5,
      sigma: 0,
      tokensPerSecond: 200,
      chunkWords: 4,
      replyWords: 24,
    })
    worker = await spawnWorker({
      pool,
      handler: '@hedgeyard/genai',
      env: { GENAI_BASE_URL: sim.url, GEMINI_API_KEY: 'pool-key-0123456789' },
    })
    ;[a, b] = await Promise.all([
      spawnGateway(pool, ['--disconnect-grace-ms', '300']),
      spawnGateway(pool, ['--disconnect-grace-ms', '300']),
    ])
  }, 60_000)
  afterAll(async () => {
    for (const g of [a, b]) g?.child.kill('SIGTERM')
    await worker?.stop('SIGKILL')
    await sim?.close()
  })

  it('answers generateContent and streamGenerateContent through the SDK, the same text either way', async () => {
    const reply = await sdk(a).models.generateContent({ model: MODEL, contents: 'tell me about herons' })
    expect(reply.text).toBe(fakeGeminiText('tell me about herons', 24))
    const pieces: string[] = []
    for await (const chunk of await sdk(b).models.generateContentStream({
      model: MODEL,
      contents: 'tell me about herons',
    })) {
      pieces.push(chunk.text ?? '')
    }
    expect(pieces.length).toBeGreaterThan(1)
    expect(pieces.join('')).toBe(reply.text)
  })

  it("serves the seed's API: 202 with a job id, then the job's state from the other instance", async () => {
    const res = await post(a, '/generate', request('a job'), { 'x-session-id': 'chat-7' })
    expect(res.status).toBe(202)
    const { job_id: jobId } = (await res.json()) as { job_id: string }
    const state = async () =>
      (await fetch(`${b.url}/jobs/${jobId}`, { headers: { 'x-goog-api-key': KEY } })).json()
    expect(await state()).toEqual({ status: 'Pending' })
    const done = (await eventually<unknown>(async () => {
      const s = (await state()) as { status: string }
      return s.status === 'Completed' ? s : undefined
    })) as { result: unknown }
    expect(textOf(done.result)).toBe(fakeGeminiText('a job', 24))
    const unknown = await fetch(`${b.url}/jobs/no-such-job`, { headers: { 'x-goog-api-key': KEY } })
    expect(unknown.status).toBe(404)
    expect(await unknown.json()).toMatchObject({ error: { code: 404, status: 'NOT_FOUND' } })
    const workers = (await (
      await fetch(`${b.url}/workers`, { headers: { 'x-goog-api-key': KEY } })
    ).json()) as object[]
    expect(workers[0]).toMatchObject({
      worker_id: expect.any(String),
      inflight: 0,
      queue_len: 0,
      capacity: 72,
      errors: 0,
    })
  })

  it('resumes a stream on the other instance with Last-Event-ID, without a gap or a repeat', async () => {
    sim.configure({ tokensPerSecond: 40 })
    try {
      const first = await post(
        a,
        `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`,
        request('resume me'),
      )
      const seen: string[] = []
      let lastId: string | undefined
      for await (const e of events(first)) {
        seen.push(textOf(e.data))
        lastId = e.lastId
        if (seen.length === 2) break
      }
      // The connection drops; the client comes back to the other instance.
      const again = await post(
        b,
        `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`,
        request('resume me'),
        {
          'last-event-id': lastId as string,
        },
      )
      for await (const e of events(again)) seen.push(textOf(e.data))
      expect(seen.join('')).toBe(fakeGeminiText('resume me', 24))
      expect(seen).toHaveLength(6)
    } finally {
      sim.configure({ tokensPerSecond: 200 })
    }
  })

  it('cancels the job of a client that goes away and does not come back', async () => {
    sim.configure({ tokensPerSecond: 10 })
    try {
      const ctrl = new AbortController()
      const res = await fetch(`${a.url}/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-goog-api-key': KEY },
        body: JSON.stringify(request('leave early')),
        signal: ctrl.signal,
      })
      let jobId = ''
      for await (const e of events(res)) {
        jobId = (e.lastId as string).split(':')[0] as string
        break
      }
      ctrl.abort()
      const state = await eventually(async () => {
        const s = await getJob({ redis: redisUrl(), pool }, jobId)
        return s.status === 'failed' ? s : undefined
      }, 5_000)
      expect(state).toMatchObject({ error: { code: 'CANCELLED' } })
    } finally {
      sim.configure({ tokensPerSecond: 200 })
    }
  })

  it('cancels the job of a generateContent caller that goes away, without waiting', async () => {
    // One word a second: an answer left running would keep the model busy for 24 s.
    sim.configure({ tokensPerSecond: 1 })
    try {
      const ctrl = new AbortController()
      const answer = fetch(`${a.url}/v1beta/models/${MODEL}:generateContent`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-goog-api-key': KEY },
        body: JSON.stringify(request('leave at once')),
        signal: ctrl.signal,
      }).catch((err: unknown) => err)
      await eventually(() => sim.stats().inflight === 1, 10_000)
      ctrl.abort()
      await answer
      await eventually(() => sim.stats().inflight === 0, 10_000)
    } finally {
      sim.configure({ tokensPerSecond: 200 })
    }
  })

  it('sends an error that comes after the first event as an error event in the stream', async () => {
    sim.configure({ tokensPerSecond: 10 })
    try {
      const res = await post(a, `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, request('cut short'))
      const seen: unknown[] = []
      for await (const e of events(res)) {
        seen.push(e.data)
        if (seen.length === 1)
          await cancelJob({ redis: redisUrl(), pool }, (e.lastId as string).split(':')[0] as string)
      }
      expect(seen.length).toBeGreaterThanOrEqual(2)
      expect(seen.at(-1)).toEqual({
        error: { code: 499, status: 'CANCELLED', message: 'the job was cancelled' },
      })
    } finally {
      sim.configure({ tokensPerSecond: 200 })
    }
  })

  it('answers 401 without a key or with a wrong one, through the SDK too', async () => {
    const none = await fetch(`${a.url}/v1beta/models/${MODEL}:generateContent`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request('x')),
    })
    expect(none.status).toBe(401)
    expect(await none.json()).toMatchObject({ error: { code: 401, status: 'UNAUTHENTICATED' } })
    await expect(
      sdk(a, 'wrong-key-0123456789').models.generateContent({ model: MODEL, contents: 'x' }),
    ).rejects.toMatchObject({
      status: 401,
    })
    // Health and metrics answer without a key.
    expect((await fetch(`${a.url}/healthz`)).status).toBe(200)
    expect(await (await fetch(`${a.url}/readyz`)).json()).toMatchObject({ status: 'ready', workers: 1 })
    const metrics = await (await fetch(`${a.url}/metrics`)).text()
    expect(metrics).toMatch(
      /^hedgeyard_gateway_requests_total\{route="\/v1beta\/models\/\*",code="401"\} \d+$/m,
    )
    // The library's own metrics (submits, hedges, retries...) are on the same page.
    expect(metrics).toMatch(/^# TYPE hedgeyard_submits_total counter$/m)
    expect(metrics).toMatch(/^# TYPE hedgeyard_hedges_denied_total counter$/m)
  })

  it('never logs an API key, given in a header or in the address, at debug level either', async () => {
    const g = await spawnGateway(pool, [], { HEDGEYARD_LOG_LEVEL: 'debug' })
    try {
      expect((await post(g, `/v1beta/models/${MODEL}:generateContent`, request('logged'))).status).toBe(200)
      expect((await fetch(`${g.url}/jobs/no-such-job?key=${KEY}`)).status).toBe(404)
      const wrong = 'wrong-key-0123456789abcdef'
      expect((await fetch(`${g.url}/workers?key=${wrong}`)).status).toBe(401)
      await eventually(
        () =>
          g
            .output()
            .split('\n')
            .filter((l) => l.includes('"msg":"request"')).length >= 3,
      )
      expect(g.output()).toContain('"route":"/jobs/:id"')
      expect(g.output()).not.toContain(KEY)
      expect(g.output()).not.toContain(wrong)
    } finally {
      g.child.kill('SIGTERM')
    }
  })

  it('answers 429 with Retry-After over the pool quota', async () => {
    const ref = { redis: redisUrl(), pool }
    await setPoolLimits(ref, { rate: { limit: 1, periodMs: 60_000 } })
    try {
      await post(a, '/generate', request('one'))
      const res = await post(b, '/generate', request('two'))
      expect(res.status).toBe(429)
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(1)
      expect(await res.json()).toMatchObject({ error: { code: 429, status: 'RESOURCE_EXHAUSTED' } })
      await expect(sdk(a).models.generateContent({ model: MODEL, contents: 'three' })).rejects.toMatchObject({
        status: 429,
      })
    } finally {
      await clearPoolLimits(ref)
    }
  })

  it("answers the model's 400 as a 400 that says what the model refused, through the SDK too", async () => {
    // The gateway lets the role through; the model API refuses it.
    const body = { contents: [{ role: 'system', parts: [{ text: 'be brief' }] }] }
    const res = await post(a, `/v1beta/models/${MODEL}:generateContent`, body)
    expect(res.status).toBe(400)
    const answer = (await res.json()) as { error: { status: string; message: string } }
    expect(answer.error.status).toBe('INVALID_ARGUMENT')
    expect(answer.error.message).toMatch(/role/)
    await expect(
      sdk(b).models.generateContent({ model: MODEL, contents: [{ role: 'system', parts: [{ text: 'x' }] }] }),
    ).rejects.toMatchObject({ status: 400 })
  })

  it("applies the limits of class 'default' to each API key on its own", async () => {
    const ref = { redis: redisUrl(), pool }
    await setPoolLimits(ref, { rate: { limit: 1, periodMs: 60_000 } }, { limitClass: 'default' })
    try {
      expect((await post(a, '/generate', request('one'))).status).toBe(202)
      const second = await post(b, '/generate', request('two'))
      expect(second.status).toBe(429)
      expect(await second.json()).toMatchObject({
        error: { message: expect.stringContaining("tenant 'alice'") },
      })
    } finally {
      await clearPoolLimits(ref, { limitClass: 'default' })
    }
  })

  it('refuses bad input in Google error shape, naming what is wrong', async () => {
    const cases: [string, Response, number, RegExp][] = [
      ['invalid JSON', await post(a, '/generate', '{"contents": ['), 400, /JSON/],
      ['a 10 MB body', await postLarge(a, '/generate', 10 * 1024 * 1024), 413, /larger than/],
      [
        'a wrong content type',
        await fetch(`${a.url}/generate`, {
          method: 'POST',
          headers: { 'content-type': 'text/plain', 'x-goog-api-key': KEY },
          body: 'hello',
        }),
        415,
        /JSON/,
      ],
      ['an unknown path', await post(a, '/v2/nothing', request('x')), 404, /no route/],
      ['an unknown field', await post(a, '/generate', { ...request('x'), bogus: 1 }), 400, /bogus/],
      ['no contents', await post(a, '/generate', {}), 400, /contents/],
      [
        'a 10 KB session id',
        await post(a, '/generate', request('x'), { 'x-session-id': 's'.repeat(10_000) }),
        400,
        /session/,
      ],
      [
        'an unknown method',
        await post(a, `/v1beta/models/${MODEL}:embedContent`, request('x')),
        404,
        /embedContent/,
      ],
      [
        'a bad Last-Event-ID',
        await post(a, `/v1beta/models/${MODEL}:streamGenerateContent?alt=sse`, request('x'), {
          'last-event-id': 'nope',
        }),
        400,
        /Last-Event-ID/,
      ],
    ]
    for (const [what, res, code, message] of cases) {
      expect({ what, code: res.status }).toEqual({ what, code })
      const body = (await res.json()) as { error: { code: number; message: string; status: string } }
      expect({ what, body }).toMatchObject({
        what,
        body: { error: { code, message: expect.stringMatching(message) } },
      })
    }
    // A header with a line break never reaches the gateway: the HTTP client refuses to send it.
    await expect(
      post(a, '/generate', request('x'), { 'x-session-id': 'a\r\nx-injected: 1' }),
    ).rejects.toThrow()
  })
})

describe('the gateway over cells, two instances and a worker process in each cell', () => {
  const CELLS = 3
  const pool = uniquePool('gateway-cells')
  const c = client()
  let sim: FakeGemini
  const workers: WorkerProcess[] = []
  let a: GatewayProcess
  let b: GatewayProcess

  beforeAll(async () => {
    sim = await startFakeGemini({
      medianMs: 5,
      sigma: 0,
      tokensPerSecond: 2_000,
      chunkWords: 4,
      replyWords: 8,
    })
    // One after another: each joins the cell with the fewest workers, so one lands in each.
    for (let i = 0; i < CELLS; i++) {
      workers.push(
        await spawnWorker({
          pool,
          handler: '@hedgeyard/genai',
          idPrefix: `gc${i}`,
          env: { GENAI_BASE_URL: sim.url, GEMINI_API_KEY: 'pool-key-0123456789' },
          extraArgs: ['--cells', String(CELLS)],
        }),
      )
    }
    ;[a, b] = await Promise.all([
      spawnGateway(pool, ['--cells', String(CELLS)]),
      spawnGateway(pool, ['--cells', String(CELLS)]),
    ])
  }, 60_000)
  afterAll(async () => {
    for (const g of [a, b]) g?.child.kill('SIGTERM')
    await Promise.all(workers.map((w) => w.stop('SIGKILL')))
    for (let i = 0; i < CELLS; i++) await cleanupPool(c, `${pool}.${i}`)
    c.disconnect()
    await sim?.close()
  })

  it("keeps a session's jobs in its cell, and finds any job from the other instance", async () => {
    for (const session of ['alice', 'bob', 'carol', 'dave', 'erin']) {
      const res = await post(a, '/generate', request(`for ${session}`), { 'x-session-id': session })
      expect(res.status).toBe(202)
      const { job_id: jobId } = (await res.json()) as { job_id: string }
      const done = (await eventually<unknown>(async () => {
        const s = (await (
          await fetch(`${b.url}/jobs/${jobId}`, { headers: { 'x-goog-api-key': KEY } })
        ).json()) as { status: string }
        return s.status === 'Completed' ? s : undefined
      })) as { result: unknown }
      expect(textOf(done.result)).toBe(fakeGeminiText(`for ${session}`, 8))
      // The job's result is in the session's cell, and in no other.
      const holders: number[] = []
      for (let i = 0; i < CELLS; i++) {
        if ((await c.exists(`hy:{${pool}.${i}}:res:${jobId}`)) === 1) holders.push(i)
      }
      expect(holders, session).toEqual([sessionCell(session, CELLS)])
    }
    // Through the SDK too, without a session.
    const reply = await sdk(b).models.generateContent({ model: MODEL, contents: 'no session' })
    expect(reply.text).toBe(fakeGeminiText('no session', 8))
  })

  it("lists every cell's workers, each with its cell", async () => {
    const listed = (await (
      await fetch(`${a.url}/workers`, { headers: { 'x-goog-api-key': KEY } })
    ).json()) as {
      worker_id: string
      cell: number
      alive: boolean
    }[]
    expect(listed.map((w) => w.cell).sort()).toEqual([0, 1, 2])
    expect(listed.every((w) => w.alive)).toBe(true)
    // Each worker is listed with the cell it registered in.
    for (const w of listed) expect(await c.exists(`hy:{${pool}.${w.cell}}:w:${w.worker_id}`)).toBe(1)
    const ready = await fetch(`${a.url}/readyz`)
    expect(await ready.json()).toEqual({ status: 'ready', workers: CELLS })
  })
})
