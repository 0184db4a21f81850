import type { DispatcherStats } from '../producer/dispatcher.js'
import { invalidArgument, isHedgeyardError } from '../protocol/errors.js'

/** One worker of this process as a metrics sink reads it at collect time. */
export interface WorkerGauge {
  workerId: string
  /** Jobs it is running now. */
  inflight: number
  /** The most jobs it holds at once (concurrency plus queue capacity). */
  capacity: number
  concurrency: number
}

/**
 * What the library tells a metrics system as it works: pass one as the `metrics` option of a
 * Dispatcher or of startWorkers (`hedgeyard/prometheus` makes one for prom-client). Every method
 * is optional; the per-job ones run on the hot path and must be cheap and must not throw.
 */
export interface MetricsSink {
  /**
   * The pools `cellPools` are the cells of the logical pool `pool` (a CellDispatcher or
   * startCellWorkers was made with this sink): the other methods name a cell's pool, and a sink may
   * label it with the logical pool and the cell's index.
   */
  poolCells?(pool: string, cellPools: readonly string[]): void
  /** A dispatcher opened: `stats` reads its counters (hedges, retries...) whenever wanted. */
  producerOpened?(pool: string, producerId: string, stats: () => DispatcherStats): void
  /** A dispatcher closed: `final` holds its last counters. */
  producerClosed?(pool: string, producerId: string, final: DispatcherStats): void
  /**
   * A submit or stream settled, at its caller: `outcome` is 'ok' or the error's code; `seconds` from
   * the submit to the result (undefined when unknown, as for a stream).
   */
  submitSettled?(pool: string, outcome: string, seconds: number | undefined): void
  /** Workers of this process started: `gauges` reads their load whenever wanted. */
  workersStarted?(pool: string, groupId: string, gauges: () => WorkerGauge[]): void
  /** Those workers stopped. */
  workersStopped?(pool: string, groupId: string): void
  /**
   * A worker of this process finished a job: `outcome` is 'ok', the error's code, or 'skipped'
   * (another copy had won, or its deadline had passed); `seconds` it ran; `queueSeconds` from its
   * dispatch to its start (Redis time; undefined when the entry's id carries no time).
   */
  jobFinished?(
    pool: string,
    workerId: string,
    outcome: string,
    seconds: number,
    queueSeconds: number | undefined,
  ): void
  /** This process moved jobs of dead workers: `moved` to live workers, `lettered` to the dead letters. */
  rescued?(pool: string, moved: number, lettered: number): void
  /** This process put entries in the dead letters (entries that cannot run). */
  deadLettered?(pool: string, count: number): void
}

/** The outcome label of an error: its code when it is a HedgeyardError, 'error' otherwise. */
export function outcomeLabel(err: unknown): string {
  if (err === undefined) return 'ok'
  return isHedgeyardError(err) ? err.code : 'error'
}

/** Calls a sink's method, if it has one, and swallows what it throws: a metrics system must never fail a job. */
export function notify<K extends keyof MetricsSink>(
  sink: MetricsSink | undefined,
  name: K,
  ...args: Parameters<NonNullable<MetricsSink[K]>>
): void {
  const fn = sink?.[name] as ((...a: unknown[]) => void) | undefined
  if (fn === undefined) return
  try {
    fn.apply(sink, args)
  } catch {
    // a broken sink loses a sample, never a job
  }
}

/**
 * The `metrics` option: undefined, or an object (its methods are looked up when called).
 * @throws HedgeyardError INVALID_ARGUMENT for anything else.
 */
export function checkSink(sink: MetricsSink | undefined): MetricsSink | undefined {
  if (sink === undefined) return undefined
  if (typeof sink !== 'object' || sink === null) {
    throw invalidArgument(
      'metrics must be an object with the methods of a MetricsSink, e.g. prometheusMetrics() from hedgeyard/prometheus',
    )
  }
  return sink
}
