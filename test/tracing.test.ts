import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { client, eventually, FIXTURES, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { context, SpanKind, trace } from '@opentelemetry/api'
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { Dispatcher, startWorkers } from 'hedgeyard'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

/** A span as the worker process wrote it (see fixtures/traced-worker.js). */
interface FileSpan {
  name: string
  kind: number
  traceId: string
  spanId: string
  parentSpanId?: string
  attributes: Record<string, unknown>
  links: { traceId: string; spanId: string }[]
  status: { code: number }
}

const c = client()
const closers: (() => Promise<unknown> | undefined)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

/** Starts the traced worker process and returns where it writes its spans. */
async function tracedWorkers(pool: string, count: number): Promise<{ spans: () => FileSpan[] }> {
  const file = join(mkdtempSync(join(tmpdir(), 'hy-spans-')), 'spans.jsonl')
  const child: ChildProcess = spawn(
    process.execPath,
    [join(FIXTURES, 'traced-worker.js'), redisUrl(), pool, file, String(count)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  closers.push(() => {
    child.kill('SIGKILL')
    return undefined
  })
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  await eventually(() => out.includes('workers started'), 15_000)
  return {
    spans: () => {
      try {
        return readFileSync(file, 'utf8')
          .split('\n')
          .filter((l) => l !== '')
          .map((l) => JSON.parse(l) as FileSpan)
      } catch {
        return []
      }
    },
  }
}

describe('tracing without an SDK', () => {
  it('puts no trace context in the job entry', async () => {
    const pool = uniquePool('trace-none')
    // A worker that never answers: its entry stays in its stream to be read.
    const group = await startWorkers({ redis: redisUrl(), pool, handler: () => new Promise(() => {}) })
    closers.push(() => group.close().catch(() => {}))
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    void d.submit({ x: 1 }, { timeoutMs: 500 }).catch(() => {})
    const [workerId] = group.workerIds
    const entries = await eventually(async () => {
      const e = await c.xrange(`hy:{${pool}}:q:${workerId}`, '-', '+')
      return e.length > 0 ? e : undefined
    })
    expect(entries?.[0]?.[1]).not.toContain('trace')
  })
})

describe('tracing with an SDK, across a producer and a worker process', () => {
  const exporter = new InMemorySpanExporter()
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
  beforeAll(() => {
    provider.register()
  })
  afterAll(async () => {
    trace.disable()
    await provider.shutdown()
  })
  afterEach(() => exporter.reset())

  const producerSpans = (jobId: string) =>
    exporter.getFinishedSpans().filter((s) => s.attributes['messaging.message.id'] === jobId)

  it('links send, process and the handler’s own span in one trace, with the messaging attributes', async () => {
    const pool = uniquePool('trace')
    const worker = await tracedWorkers(pool, 1)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    const parent = trace.getTracer('test').startSpan('request')
    const ctx = trace.setSpan(context.active(), parent)
    const job = await context.with(ctx, () => d.stream({}, {}))
    for await (const _ of job) {
      // no chunks: a plain handler's stream ends with its result
    }
    await job.result
    parent.end()
    const [send] = producerSpans(job.jobId) as [ReadableSpan]
    expect(send.name).toBe(`send ${pool}`)
    expect(send.kind).toBe(SpanKind.PRODUCER)
    expect(send.parentSpanContext?.spanId).toBe(parent.spanContext().spanId)
    expect(send.attributes).toMatchObject({
      'messaging.system': 'hedgeyard',
      'messaging.destination.name': pool,
      'messaging.message.id': job.jobId,
      'messaging.operation.type': 'send',
    })
    const spans = await eventually(() => (worker.spans().length >= 2 ? worker.spans() : undefined))
    const processSpan = spans?.find((s) => s.name === `process ${pool}`) as FileSpan
    expect(processSpan.kind).toBe(SpanKind.CONSUMER)
    expect(processSpan.traceId).toBe(send.spanContext().traceId)
    expect(processSpan.parentSpanId).toBe(send.spanContext().spanId)
    expect(processSpan.attributes).toMatchObject({
      'messaging.system': 'hedgeyard',
      'messaging.destination.name': pool,
      'messaging.message.id': job.jobId,
      'messaging.operation.type': 'process',
    })
    const handlerSpan = spans?.find((s) => s.name === 'handler work') as FileSpan
    expect(handlerSpan.parentSpanId).toBe(processSpan.spanId)
  })

  it('gives a hedge copy its own send span, linked to the submit, that the copy’s process span follows', async () => {
    const pool = uniquePool('trace-hedge')
    const worker = await tracedWorkers(pool, 2)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    // The first copy sleeps long enough for the hedge, sent after 50 ms, to go out and win.
    await d.submit({ delayMs: 400 }, { hedge: { delayMs: 50, maxAttempts: 2 } })
    const spans = producerSpans(
      (exporter.getFinishedSpans()[0] as ReadableSpan).attributes['messaging.message.id'] as string,
    )
    const submit = spans.find((s) => s.links.length === 0) as ReadableSpan
    const hedge = spans.find((s) => s.links.length === 1) as ReadableSpan
    expect(spans).toHaveLength(2)
    expect(hedge.attributes).toMatchObject({ 'hedgeyard.copy': 2, 'hedgeyard.copy.kind': 'hedge' })
    expect(hedge.links[0]?.context.spanId).toBe(submit.spanContext().spanId)
    const processes = await eventually(() => {
      const p = worker.spans().filter((s) => s.name === `process ${pool}`)
      return p.length >= 2 ? p : undefined
    }, 10_000)
    const parents = (processes ?? []).map((p) => p.parentSpanId).sort()
    expect(parents).toEqual([submit.spanContext().spanId, hedge.spanContext().spanId].sort())
  })

  it('marks a failed job with error.type on both sides', async () => {
    const pool = uniquePool('trace-fail')
    const worker = await tracedWorkers(pool, 1)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    await expect(d.submit({ fail: 'boom' }, { maxAttempts: 1 })).rejects.toMatchObject({
      code: 'HANDLER_ERROR',
    })
    const [send] = exporter.getFinishedSpans().filter((s) => s.name === `send ${pool}`) as [ReadableSpan]
    expect(send.attributes['error.type']).toBe('HANDLER_ERROR')
    expect(send.status.code).toBe(2)
    const processSpan = (await eventually(() =>
      worker.spans().find((s) => s.name === `process ${pool}`),
    )) as FileSpan
    expect(processSpan.attributes['error.type']).toBe('HANDLER_ERROR')
    expect(processSpan.status.code).toBe(2)
  })
})
