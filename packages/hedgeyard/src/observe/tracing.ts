/**
 * OpenTelemetry traces through `@opentelemetry/api` only. With no SDK registered, `activeTracer()`
 * is undefined and nothing else here runs: no span, no context read, no field on the wire.
 */
import {
  type Context,
  context,
  type Link,
  ProxyTracerProvider,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api'

const TRACER_NAME = 'hedgeyard'
/** `messaging.system`: not one of the registered values, so the project's own name. */
const SYSTEM = 'hedgeyard'

/** The tracer of a registered SDK, or undefined when none is (the common, free case). */
export function activeTracer(): Tracer | undefined {
  const provider = trace.getTracerProvider()
  // Our own proxy with no delegate means no SDK: another copy of the API (CommonJS) holds the
  // SDK's provider when one is registered, and hands out its tracer.
  if (provider instanceof ProxyTracerProvider) return provider.getDelegateTracer(TRACER_NAME)
  return provider.getTracer(TRACER_NAME)
}

/** The W3C `traceparent` of a span: `00-<trace id>-<span id>-<flags>`. */
export function traceparentOf(span: Span): string {
  const c = span.spanContext()
  return `00-${c.traceId}-${c.spanId}-${(c.traceFlags & 0xff).toString(16).padStart(2, '0')}`
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/
const ZERO_TRACE = '0'.repeat(32)
const ZERO_SPAN = '0'.repeat(16)

/** A remote span context from a `traceparent`, or undefined for anything that is not a valid one. */
export function parseTraceparent(value: string | undefined): SpanContext | undefined {
  if (value === undefined) return undefined
  const m = TRACEPARENT.exec(value)
  if (m === null || m[1] === ZERO_TRACE || m[2] === ZERO_SPAN) return undefined
  return {
    traceId: m[1] as string,
    spanId: m[2] as string,
    traceFlags: Number.parseInt(m[3] as string, 16),
    isRemote: true,
  }
}

/** Ends a span with the outcome: an error's code as `error.type`, and an error status. */
function endSpan(span: Span, errorType: string | undefined, message?: string): void {
  if (errorType !== undefined) {
    span.setAttribute('error.type', errorType)
    span.setStatus(
      message === undefined ? { code: SpanStatusCode.ERROR } : { code: SpanStatusCode.ERROR, message },
    )
  }
  span.end()
}

/**
 * The spans of one submit: `send <pool>` (PRODUCER) from the submit to its result, whose context
 * the first copy carries; each hedge, retry or resend gets a `send <pool>` span of its own, linked
 * to the submit's, whose context that copy carries.
 */
export class SubmitTrace {
  readonly traceparent: string
  readonly #tracer: Tracer
  readonly #span: Span
  readonly #parent: Context
  readonly #pool: string
  readonly #jobId: string
  readonly #copies: Span[] = []

  private constructor(tracer: Tracer, pool: string, jobId: string) {
    this.#tracer = tracer
    this.#pool = pool
    this.#jobId = jobId
    this.#parent = context.active()
    this.#span = tracer.startSpan(
      `send ${pool}`,
      { kind: SpanKind.PRODUCER, attributes: sendAttributes(pool, jobId, 1) },
      this.#parent,
    )
    this.traceparent = traceparentOf(this.#span)
  }

  /** Starts the spans of a submit, or undefined when no SDK is registered. */
  static start(pool: string, jobId: string): SubmitTrace | undefined {
    const tracer = activeTracer()
    return tracer === undefined ? undefined : new SubmitTrace(tracer, pool, jobId)
  }

  /** The `traceparent` copy `attempt` carries: the submit's for the first, a span of its own after. */
  copy(attempt: number, kind: 'hedge' | 'retry' | undefined): string {
    if (attempt === 1) return this.traceparent
    const link: Link = { context: this.#span.spanContext() }
    const span = this.#tracer.startSpan(
      `send ${this.#pool}`,
      {
        kind: SpanKind.PRODUCER,
        links: [link],
        attributes: {
          ...sendAttributes(this.#pool, this.#jobId, attempt),
          'hedgeyard.copy.kind': kind ?? 'resend',
        },
      },
      this.#parent,
    )
    this.#copies.push(span)
    return traceparentOf(span)
  }

  /** Ends every span: `errorType` is the error's code when the submit failed. */
  end(errorType: string | undefined, message?: string): void {
    for (const span of this.#copies) span.end()
    endSpan(this.#span, errorType, message)
  }
}

function sendAttributes(pool: string, jobId: string, copy: number) {
  return {
    'messaging.system': SYSTEM,
    'messaging.destination.name': pool,
    'messaging.message.id': jobId,
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'send',
    'hedgeyard.copy': copy,
  }
}

/** The `process <pool>` span of a worker running one copy, and the context its handler runs in. */
export interface ProcessTrace {
  span: Span
  context: Context
}

/**
 * Starts the CONSUMER span of a job a worker runs, as a child of the copy's `traceparent` (a root
 * span when the entry carries none), or undefined when no SDK is registered.
 */
export function startProcessSpan(
  pool: string,
  job: { jobId: string; copy: number; attempt: number; traceparent: string | undefined },
  workerId: string,
): ProcessTrace | undefined {
  const tracer = activeTracer()
  if (tracer === undefined) return undefined
  const remote = parseTraceparent(job.traceparent)
  const parent = remote === undefined ? context.active() : trace.setSpanContext(context.active(), remote)
  const span = tracer.startSpan(
    `process ${pool}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': SYSTEM,
        'messaging.destination.name': pool,
        'messaging.message.id': job.jobId,
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.consumer.group.name': 'hy',
        'hedgeyard.worker.id': workerId,
        'hedgeyard.copy': job.copy,
        'hedgeyard.attempt': job.attempt,
      },
    },
    parent,
  )
  return { span, context: trace.setSpan(parent, span) }
}

/** Runs `fn` with a worker's span active, so that the handler's own spans are its children. */
export function withProcessSpan<T>(t: ProcessTrace, fn: () => T): T {
  return context.with(t.context, fn)
}

/** Ends a worker's span with the job's outcome ('ok', 'skipped' or an error code). */
export function endProcessSpan(t: ProcessTrace, outcome: string): void {
  endSpan(t.span, outcome === 'ok' || outcome === 'skipped' ? undefined : outcome)
}
