/** Options of `race` and `hedge`. */
export interface RaceOptions {
  /** Milliseconds between the start of one attempt and the start of the next. */
  stepMs: number
  /**
   * Most attempts running at once; at the cap, the next launch waits until one settles.
   * @defaultValue Infinity
   */
  concurrency?: number
  /** Aborting it aborts every running attempt, launches no more and ends the race with its reason. */
  signal?: AbortSignal
}

/** Defaults of the optional {@link RaceOptions}. */
export const RACE_DEFAULTS = Object.freeze({ concurrency: Number.POSITIVE_INFINITY })

const MAX_TIMER_MS = 2 ** 31 - 1

/** {@link RaceOptions} after validation, with defaults applied. */
export interface ResolvedRaceOptions {
  readonly stepMs: number
  readonly concurrency: number
  readonly signal: AbortSignal | undefined
}

/**
 * Validates `opts` once and merges {@link RACE_DEFAULTS}.
 * @throws TypeError when an option has the wrong type, RangeError when it is out of range.
 */
export function resolveRaceOptions(opts: RaceOptions): ResolvedRaceOptions {
  if (typeof opts !== 'object' || opts === null) {
    throw new TypeError(`options must be an object with at least stepMs (got ${show(opts)})`)
  }
  const { stepMs, concurrency = RACE_DEFAULTS.concurrency, signal } = opts
  if (typeof stepMs !== 'number') {
    throw new TypeError(`stepMs must be a finite number >= 0 (got ${show(stepMs)})`)
  }
  if (!Number.isFinite(stepMs) || stepMs < 0) {
    throw new RangeError(`stepMs must be a finite number >= 0 (got ${show(stepMs)})`)
  }
  if (stepMs > MAX_TIMER_MS) {
    // Node would fire a longer timer after 1 ms instead.
    throw new RangeError(
      `stepMs must be at most ${MAX_TIMER_MS}, the longest timer delay (got ${show(stepMs)})`,
    )
  }
  if (typeof concurrency !== 'number') {
    throw new TypeError(`concurrency must be a positive integer or Infinity (got ${show(concurrency)})`)
  }
  if (!(Number.isInteger(concurrency) || concurrency === Number.POSITIVE_INFINITY) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer or Infinity (got ${show(concurrency)})`)
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`signal must be an AbortSignal (got ${show(signal)})`)
  }
  return { stepMs, concurrency, signal }
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'object' && value !== null) return Object.prototype.toString.call(value)
  return String(value)
}
