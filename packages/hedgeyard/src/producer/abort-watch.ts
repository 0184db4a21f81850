/** A request that a caller's signal can abort: a submit or a stream. */
export interface AbortTarget {
  handleEvent(): void
}

/** The requests behind a signal's one listener, once a second request shares it. */
interface Shared {
  targets: Set<AbortTarget>
  listener: () => void
}

/**
 * The requests listening to each caller's AbortSignal, behind one listener per signal. A signal
 * given to one request (a gateway's, one per HTTP request) has that request as its listener, as
 * with `addEventListener` alone; a signal shared by many (one for a whole incoming call, one for
 * the process) gets one listener that tells them all, not one each, so Node never warns of a
 * listener leak past ten.
 */
const watches = new WeakMap<AbortSignal, AbortTarget | Shared>()

/** Calls `target.handleEvent()` when `signal` aborts, unless unwatched first. */
export function watchAbort(signal: AbortSignal, target: AbortTarget): void {
  const watch = watches.get(signal)
  if (watch === undefined) {
    watches.set(signal, target)
    signal.addEventListener('abort', target, { once: true })
  } else if ('targets' in watch) {
    watch.targets.add(target)
  } else {
    // A second request on the signal: one listener for both from now on.
    signal.removeEventListener('abort', watch)
    const targets = new Set([watch, target])
    const listener = () => {
      // Forgotten first: a request that settles now finds nothing to unwatch.
      watches.delete(signal)
      for (const t of targets) t.handleEvent()
    }
    watches.set(signal, { targets, listener })
    signal.addEventListener('abort', listener, { once: true })
  }
}

/** Stops watching for `target`; the signal's listener goes with its last request. */
export function unwatchAbort(signal: AbortSignal, target: AbortTarget): void {
  const watch = watches.get(signal)
  if (watch === undefined) return
  if (watch === target) {
    watches.delete(signal)
    signal.removeEventListener('abort', target)
  } else if ('targets' in watch && watch.targets.delete(target) && watch.targets.size === 0) {
    watches.delete(signal)
    signal.removeEventListener('abort', watch.listener)
  }
}
