import type { Logger } from 'pino'
import { type MetricsSink, notify } from '../observe/metrics-sink.js'
import type { JobEntry } from '../protocol/codec.js'
import type { JobResult } from './run-job.js'

/** A job's outcome for metrics and spans: 'ok', its error code, or 'skipped'. */
export function outcomeOf(result: JobResult, code: string | undefined): string {
  return result.outcome === 'ok' ? 'ok' : result.outcome === 'err' ? (code ?? 'HANDLER_ERROR') : 'skipped'
}

/**
 * Logs how a job ended, never its payload: a failure at warn (an upstream's rate limit at info
 * too), any other end at debug, each with how long its handler ran. Returns a failed job's error code.
 */
export function logJob(
  logger: Logger,
  entry: JobEntry,
  result: JobResult,
  startedAt: number | undefined,
): string | undefined {
  const durationMs = startedAt === undefined ? undefined : Date.now() - startedAt
  if (result.outcome === 'err') return logFailure(logger, entry, result.envelope, durationMs)
  if (logger.isLevelEnabled('debug')) {
    logger.debug(
      { jobId: entry.jobId, attempt: entry.attempt, outcome: result.outcome, durationMs },
      'job done',
    )
  }
  return undefined
}

function logFailure(
  logger: Logger,
  entry: JobEntry,
  envelope: string,
  durationMs: number | undefined,
): string | undefined {
  let error: {
    code?: string
    name?: string
    message?: string
    retryable?: boolean
    retryAfterMs?: number
  } = {}
  try {
    error = (JSON.parse(envelope) as { error?: typeof error }).error ?? {}
  } catch {
    // an envelope this worker made is JSON; nothing to add otherwise
  }
  const { retryAfterMs, ...rest } = error
  logger.warn({ jobId: entry.jobId, attempt: entry.attempt, durationMs, error: rest }, 'job failed')
  if (retryAfterMs !== undefined) {
    logger.info({ jobId: entry.jobId, retryAfterMs }, 'upstream rate limit: cooling down')
  }
  return typeof error.code === 'string' ? error.code : undefined
}

/** A finished job as the metrics sink hears of it. */
export interface FinishedJob {
  pool: string
  workerId: string
  entry: JobEntry
  outcome: string
  /** When its handler started (ms, this host), if it ran. */
  startedAt: number | undefined
  /** Redis time minus this host's, in ms. */
  clockOffsetMs: number
}

/** Tells the sink how the job went, how long it ran and how long it waited in the queue. */
export function observeJob(metrics: MetricsSink, job: FinishedJob): void {
  const now = Date.now()
  const { entry, startedAt } = job
  // A stream entry's id starts with the Redis time (ms) it was added at: its dispatch.
  const queuedAt = Number(entry.entryId.slice(0, entry.entryId.indexOf('-')))
  const ranFrom = startedAt ?? now
  const queueSeconds =
    startedAt !== undefined && Number.isFinite(queuedAt) && queuedAt > 0
      ? Math.max(0, ranFrom + job.clockOffsetMs - queuedAt) / 1000
      : undefined
  notify(metrics, 'jobFinished', job.pool, job.workerId, job.outcome, (now - ranFrom) / 1000, queueSeconds)
}
