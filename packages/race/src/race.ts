import { type RaceOptions, type ResolvedRaceOptions, resolveRaceOptions } from './options.js'

/** What each attempt receives besides its argument. */
export interface RaceContext {
  /** Aborted when the race ends before this attempt settled (loop left, `opts.signal` aborted). */
  readonly signal: AbortSignal
  /** Position of the attempt in launch order, which is also the position of its argument in `args`. */
  readonly index: number
}

/** One async attempt of a race. */
export type RaceTask<A, T> = (arg: A, ctx: RaceContext) => Promise<T>

/** A settled attempt: `ok: true` with its `value`, or `ok: false` with its `error`. */
export type RaceOutcome<A, T> =
  | { readonly ok: true; readonly arg: A; readonly index: number; readonly value: T }
  | { readonly ok: false; readonly arg: A; readonly index: number; readonly error: unknown }

/**
 * Starts `task(arg)` for each of `args` one by one, `stepMs` apart (at once after a failure), and
 * yields every outcome in completion order; leaving the loop aborts the attempts still running.
 * @throws TypeError or RangeError at once when an option is invalid.
 */
export function race<A, T>(
  args: Iterable<A>,
  task: RaceTask<A, T>,
  opts: RaceOptions,
): AsyncIterable<RaceOutcome<A, T>> {
  const resolved = resolveRaceOptions(opts)
  if (typeof task !== 'function') throw new TypeError(`task must be a function (got ${typeof task})`)
  return { [Symbol.asyncIterator]: () => new RaceRun(args, task, resolved) }
}

type Waiter<A, T> = {
  resolve: (result: IteratorResult<RaceOutcome<A, T>, undefined>) => void
  reject: (error: unknown) => void
}

const DONE = Object.freeze({ done: true, value: undefined }) satisfies IteratorReturnResult<undefined>

/**
 * One iteration of a race. Launching is driven by timers and settlements only, never by the
 * consumer's `next()` calls, so a slow consumer cannot cause catch-up launches.
 */
class RaceRun<A, T> implements AsyncIterator<RaceOutcome<A, T>, undefined> {
  readonly #argsSource: Iterable<A>
  readonly #task: RaceTask<A, T>
  readonly #opts: ResolvedRaceOptions
  #args: Iterator<A> | undefined
  // One argument is read ahead so the race knows it is over as soon as the last attempt settles.
  #nextArg: IteratorResult<A> | undefined
  #nextIndex = 0
  #state: 'idle' | 'running' | 'over' = 'idle'
  readonly #running = new Set<AbortController>()
  readonly #buffer: RaceOutcome<A, T>[] = []
  readonly #waiters: Waiter<A, T>[] = []
  #failure: { error: unknown } | undefined
  #timer: ReturnType<typeof setTimeout> | undefined
  // The step elapsed while at the concurrency cap: launch as soon as an attempt settles.
  #isLaunchDue = false

  constructor(args: Iterable<A>, task: RaceTask<A, T>, opts: ResolvedRaceOptions) {
    this.#argsSource = args
    this.#task = task
    this.#opts = opts
  }

  next(): Promise<IteratorResult<RaceOutcome<A, T>, undefined>> {
    if (this.#state === 'idle') this.#start()
    const outcome = this.#buffer.shift()
    if (outcome !== undefined) return Promise.resolve({ done: false, value: outcome })
    if (this.#failure !== undefined) {
      const { error } = this.#failure
      this.#failure = undefined
      return Promise.reject(error)
    }
    if (this.#state === 'over') return Promise.resolve(DONE)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  return(): Promise<IteratorResult<RaceOutcome<A, T>, undefined>> {
    this.#stop(new DOMException('The race ended before this attempt settled', 'AbortError'))
    this.#buffer.length = 0
    this.#failure = undefined
    return Promise.resolve(DONE)
  }

  #start(): void {
    this.#state = 'running'
    const { signal } = this.#opts
    if (signal?.aborted) {
      this.#fail(signal.reason, signal.reason)
      return
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true })
    try {
      this.#args = this.#argsSource[Symbol.iterator]()
      this.#nextArg = this.#args.next()
    } catch (error) {
      // An iterator whose next() threw is not closed (as in for...of).
      this.#nextArg = undefined
      this.#fail(error, error)
      return
    }
    this.#launch()
  }

  #launch(): void {
    this.#clearTimer()
    this.#isLaunchDue = false
    const current = this.#nextArg
    if (current === undefined || current.done === true) {
      this.#finishIfIdle()
      return
    }
    const arg = current.value
    const index = this.#nextIndex++
    const controller = new AbortController()
    this.#running.add(controller)
    let attempt: Promise<T>
    try {
      attempt = Promise.resolve(this.#task(arg, { signal: controller.signal, index }))
    } catch (error) {
      attempt = Promise.reject(error)
    }
    attempt.then(
      (value) => this.#settle(controller, { ok: true, arg, index, value }),
      (error: unknown) => this.#settle(controller, { ok: false, arg, index, error }),
    )
    try {
      this.#nextArg = this.#args?.next()
    } catch (error) {
      // An iterator whose next() threw is not closed (as in for...of).
      this.#nextArg = undefined
      this.#fail(error, error)
      return
    }
    // The task or the args iterator may have ended the race (say, by aborting `opts.signal`).
    if (this.#state !== 'running') return
    if (this.#nextArg?.done === false) this.#timer = setTimeout(this.#onStep, this.#opts.stepMs)
  }

  readonly #onStep = (): void => {
    this.#timer = undefined
    if (this.#running.size < this.#opts.concurrency) this.#launch()
    else this.#isLaunchDue = true
  }

  readonly #onAbort = (): void => {
    const reason: unknown = this.#opts.signal?.reason
    this.#fail(reason, reason)
  }

  #settle(controller: AbortController, outcome: RaceOutcome<A, T>): void {
    // After the race is over, late outcomes are dropped: their attempt was already aborted.
    if (!this.#running.delete(controller)) return
    const waiter = this.#waiters.shift()
    if (waiter === undefined) this.#buffer.push(outcome)
    else waiter.resolve({ done: false, value: outcome })
    // A failure frees its slot and launches the next attempt at once; so does a settlement that a
    // due launch was waiting for. Either way it is one launch, and the step restarts from it.
    if (!outcome.ok || this.#isLaunchDue) this.#launch()
    else this.#finishIfIdle()
  }

  #finishIfIdle(): void {
    const isExhausted = this.#nextArg === undefined || this.#nextArg.done === true
    if (this.#state !== 'running' || !isExhausted || this.#running.size > 0) return
    this.#stop(undefined)
  }

  /** Ends the race with `error`: buffered outcomes are dropped and the next `next()` rejects. */
  #fail(error: unknown, abortReason: unknown): void {
    if (this.#state === 'over') return
    const first = this.#waiters.shift()
    this.#stop(abortReason)
    this.#buffer.length = 0
    if (first === undefined) this.#failure = { error }
    else first.reject(error)
  }

  #stop(abortReason: unknown): void {
    if (this.#state === 'over') return
    // Arguments left unread: close the iterator so a generator's finally blocks run.
    const isCut = this.#nextArg?.done === false
    this.#state = 'over'
    this.#clearTimer()
    this.#opts.signal?.removeEventListener('abort', this.#onAbort)
    for (const controller of this.#running) controller.abort(abortReason)
    this.#running.clear()
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(DONE)
    if (isCut) {
      try {
        this.#args?.return?.()
      } catch {
        // The caller's iterator failed to clean up after the race was over: nobody is left to tell.
      }
    }
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
