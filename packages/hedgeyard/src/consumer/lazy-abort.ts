/**
 * An AbortController made only when a handler reads `ctx.signal`: most handlers of short jobs
 * never do, and making one per job was a measurable share of a worker's CPU. Aborting before
 * anyone asked records the reason, and the signal is then made already aborted.
 */
export class LazyAbort {
  #ctrl: AbortController | undefined
  #reason: unknown
  #isAborted = false

  get signal(): AbortSignal {
    if (this.#ctrl === undefined) {
      this.#ctrl = new AbortController()
      if (this.#isAborted) this.#ctrl.abort(this.#reason)
    }
    return this.#ctrl.signal
  }

  abort(reason: unknown): void {
    if (this.#isAborted) return
    this.#isAborted = true
    this.#reason = reason
    this.#ctrl?.abort(reason)
  }
}

/**
 * The reason a running job's signal is aborted with (deadline, cancel, another copy won, the worker
 * stopping): a DOMException named AbortError, as `@hedgeyard/race` aborts its losing attempts and
 * as `fetch` rejects when its signal aborts, so a handler checks `err.name === 'AbortError'` alike.
 */
export function abortError(message: string): DOMException {
  return new DOMException(message, 'AbortError')
}
