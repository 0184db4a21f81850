/** A request that a caller's signal can abort: a submit or a stream. */
export interface AbortTarget {
  handleEvent(): void
}

interface Watch {
  targets: Set<AbortTarget>
  listener: () => void
}

/**
 * The requests listening to each caller's AbortSignal, behind one listener of its own per signal.
 * A signal shared by many requests (one for a whole incoming HTTP request, one for the process)
 * then carries one listener, not one per request, so Node never warns of a listener leak past
 * ten, and a request adds and removes a Set entry rather than an event listener.
 */
const watches = new WeakMap<AbortSignal, Watch>()

/** Calls `target.handleEvent()` when `signal` aborts, unless unwatched first. */
export function watchAbort(signal: AbortSignal, target: AbortTarget): void {
  let watch = watches.get(signal)
  if (watch === undefined) {
    const targets = new Set<AbortTarget>()
    const listener = () => {
      // Forgotten first: a target that settles now finds nothing to unwatch.
      watches.delete(signal)
      for (const t of targets) t.handleEvent()
    }
    watch = { targets, listener }
    watches.set(signal, watch)
    signal.addEventListener('abort', listener, { once: true })
  }
  watch.targets.add(target)
}

/** Stops watching for `target`; the signal's listener goes with its last target. */
export function unwatchAbort(signal: AbortSignal, target: AbortTarget): void {
  const watch = watches.get(signal)
  if (watch === undefined || !watch.targets.delete(target) || watch.targets.size > 0) return
  watches.delete(signal)
  signal.removeEventListener('abort', watch.listener)
}
