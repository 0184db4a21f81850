import { setMaxListeners } from 'node:events'
import { type FakeGeminiBehaviour, mergeBehaviour } from './options.js'
import { KeyQuota } from './quota.js'
import { RequestStats } from './stats.js'

/** An error the simulator was told to give, and how long a client should wait (429 only). */
export interface InjectedFailure {
  status: number
  retryAfterMs: number | undefined
}

/** Options of an outage: every model request fails with `status` for `ms` (0 ends one); a 429 asks to wait until its end. */
export interface OutageOptions {
  ms: number
  /** @defaultValue 503 */
  status?: number
}

/** Options of a burst: the next `count` model requests fail with `status`. */
export interface FailNextOptions {
  count: number
  /** @defaultValue 503 */
  status?: number
  /** The delay a 429 asks for (RetryInfo and Retry-After). @defaultValue 1000 */
  retryAfterMs?: number
}

const MAX_OUTAGE_MS = 3_600_000
/** The delay an injected 429 of a burst asks for, unless told otherwise. */
const INJECTED_RETRY_MS = 1000

/**
 * The simulator's mutable state: its behaviour, the quota windows, the counters, and the failures
 * it was told to inject. Every model request asks it, in order: an injected failure? (outage,
 * burst, random error), then the quota.
 */
export class SimulatorState {
  behaviour: FakeGeminiBehaviour
  readonly quota = new KeyQuota()
  readonly stats = new RequestStats()
  /** Aborted when the server closes: each answer under way stops. */
  /** Aborted when the server closes; every request in flight listens to it (as many as come at once). */
  readonly closing = unlimitedListeners(new AbortController())
  #outage: { untilMs: number; status: number } | undefined
  #burst: { count: number; status: number; retryAfterMs: number } | undefined
  readonly #random: () => number

  constructor(behaviour: FakeGeminiBehaviour, random: () => number = Math.random) {
    this.behaviour = behaviour
    this.#random = random
  }

  /** @throws RangeError for an unknown setting or a value out of its range. */
  configure(changes: object): FakeGeminiBehaviour {
    this.behaviour = mergeBehaviour(this.behaviour, changes)
    return { ...this.behaviour }
  }

  /** @throws RangeError when `ms` or `status` is out of range. */
  outage(options: OutageOptions): { status: number; untilMs: number } {
    checkInt('ms', options.ms, 0, MAX_OUTAGE_MS)
    const status = checkStatus(options.status)
    const untilMs = Date.now() + options.ms
    this.#outage = options.ms > 0 ? { untilMs, status } : undefined
    return { status, untilMs }
  }

  /** @throws RangeError when `count`, `status` or `retryAfterMs` is out of range. */
  failNext(options: FailNextOptions): { status: number; count: number; retryAfterMs?: number } {
    checkInt('count', options.count, 0, 1_000_000)
    const status = checkStatus(options.status)
    const retryAfterMs = options.retryAfterMs ?? INJECTED_RETRY_MS
    checkInt('retryAfterMs', retryAfterMs, 1, MAX_OUTAGE_MS)
    this.#burst = options.count > 0 ? { count: options.count, status, retryAfterMs } : undefined
    return { status, count: options.count, ...(status === 429 ? { retryAfterMs } : {}) }
  }

  /** The failure a request arriving now must get, if any; takes one from a burst. */
  injectedFailure(nowMs: number): InjectedFailure | undefined {
    const outage = this.#outage
    if (outage && nowMs < outage.untilMs) {
      return { status: outage.status, retryAfterMs: retryFor(outage.status, outage.untilMs - nowMs) }
    }
    this.#outage = undefined
    const burst = this.#burst
    if (burst) {
      if (--burst.count === 0) this.#burst = undefined
      return { status: burst.status, retryAfterMs: retryFor(burst.status, burst.retryAfterMs) }
    }
    if (this.behaviour.errorRate > 0 && this.#random() < this.behaviour.errorRate) {
      return { status: 503, retryAfterMs: undefined }
    }
    return undefined
  }

  /** Ends outages and bursts, forgets the quota windows and the counters. */
  reset(): void {
    this.#outage = undefined
    this.#burst = undefined
    this.quota.clear()
    this.stats.reset()
  }
}

function retryFor(status: number, ms: number): number | undefined {
  return status === 429 ? Math.max(1, ms) : undefined
}

function checkInt(name: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`)
  }
}

function checkStatus(status: unknown): number {
  if (status === undefined) return 503
  checkInt('status', status, 400, 599)
  return status as number
}

/** A controller whose signal takes any number of listeners: one per request in flight, not a leak. */
function unlimitedListeners(ctrl: AbortController): AbortController {
  setMaxListeners(0, ctrl.signal)
  return ctrl
}
