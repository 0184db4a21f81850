/** A request parked until its tenant may have room: `wake` sends it again. */
export interface TenantWaiter {
  wake(): void
}

/**
 * Why a probe was sent: a job of this producer ended (`freed`: one slot is free), the backoff ran
 * out (`timer`: a slot may have been freed elsewhere), or the probe before it found room after a
 * timer (`chain`: others may be free too).
 */
type ProbeKind = 'freed' | 'timer' | 'chain'

interface TenantQueue {
  tenant: string
  /** Parked requests, oldest first. */
  waiters: TenantWaiter[]
  /** The waiter sent to find out whether the tenant has room; its answer decides what comes next. */
  probe: TenantWaiter | undefined
  probeKind: ProbeKind
  /** Jobs of this producer that ended while a probe was out: as many slots to try next. */
  frees: number
  timer: NodeJS.Timeout | undefined
  /** Timer probes refused in a row: the next one waits longer. */
  round: number
}

/** The longest a tenant's parked requests go without a probe, for slots freed by other producers. */
export const MAX_PROBE_DELAY_MS = 250

/** The delay before the next timer probe after `round` refusals in a row: 5 ms doubling up to the maximum. */
export function probeDelayMs(round: number): number {
  return Math.min(5 * 2 ** round, MAX_PROBE_DELAY_MS)
}

/**
 * The requests of tenants at their cap on jobs in flight, parked in one FIFO per tenant instead of
 * each polling the dispatch script: one request at a time (the probe) is sent to find out whether
 * the tenant has room. A probe goes at once when one of this producer's jobs of the tenant ends
 * (its slot is free), and otherwise after a backoff (5 ms doubling up to 250 ms), for slots freed
 * by other producers or by deadlines; a timer probe that finds room sends the next one at once
 * (more may be free). A refused probe goes back to the head of the queue. So a tenant flooding the
 * pool from one producer costs about one script call per job placed plus a few a second,
 * and its requests are sent in the order they came.
 */
export class TenantWaits {
  readonly #queues = new Map<string, TenantQueue>()

  /** Parks `waiter` behind the tenant's other parked requests (at their head when it was the probe). */
  park(tenant: string, waiter: TenantWaiter): void {
    const q = this.#queue(tenant)
    if (q.probe === waiter) {
      q.probe = undefined
      if (q.probeKind !== 'freed') q.round++
      q.waiters.unshift(waiter)
    } else {
      q.waiters.push(waiter)
    }
    this.#next(q)
  }

  /** Takes a waiter out (its request ended: timeout, abort), probe or parked. */
  leave(tenant: string, waiter: TenantWaiter): void {
    const q = this.#queues.get(tenant)
    if (q === undefined) return
    if (q.probe === waiter) {
      q.probe = undefined
      this.#next(q)
    } else {
      const i = q.waiters.indexOf(waiter)
      if (i >= 0) q.waiters.splice(i, 1)
    }
    this.#dropIfIdle(tenant, q)
  }

  /** The probe got another answer than "at the cap": placed, or refused for another reason. */
  answered(tenant: string, waiter: TenantWaiter, isPlaced: boolean): void {
    const q = this.#queues.get(tenant)
    if (q === undefined || q.probe !== waiter) return
    q.probe = undefined
    if (isPlaced && q.probeKind !== 'freed') {
      q.round = 0
      this.#wake(q, 'chain')
    } else this.#next(q)
    this.#dropIfIdle(tenant, q)
  }

  /** One of this producer's jobs of the tenant ended: its slot is free, the head waiter tries now. */
  freed(tenant: string): void {
    const q = this.#queues.get(tenant)
    if (q === undefined) return
    if (q.probe !== undefined) q.frees++
    else this.#wake(q, 'freed')
    this.#dropIfIdle(tenant, q)
  }

  /** Requests parked for `tenant` (the probe included). */
  waiting(tenant: string): number {
    const q = this.#queues.get(tenant)
    return q === undefined ? 0 : q.waiters.length + (q.probe === undefined ? 0 : 1)
  }

  #queue(tenant: string): TenantQueue {
    let q = this.#queues.get(tenant)
    if (q === undefined) {
      q = { tenant, waiters: [], probe: undefined, probeKind: 'freed', frees: 0, timer: undefined, round: 0 }
      this.#queues.set(tenant, q)
    }
    return q
  }

  /** No probe out: a slot freed meanwhile is tried at once, else the next probe waits for the backoff. */
  #next(q: TenantQueue): void {
    if (q.probe !== undefined || q.waiters.length === 0) return
    if (q.frees > 0) {
      q.frees--
      this.#wake(q, 'freed')
    } else if (q.timer === undefined) {
      q.timer = setTimeout(() => {
        q.timer = undefined
        if (q.probe === undefined) this.#wake(q, 'timer')
        this.#dropIfIdle(q.tenant, q)
      }, probeDelayMs(q.round))
    }
  }

  #wake(q: TenantQueue, kind: ProbeKind): void {
    clearTimeout(q.timer)
    q.timer = undefined
    const waiter = q.waiters.shift()
    if (waiter === undefined) {
      q.frees = 0
      return
    }
    q.probe = waiter
    q.probeKind = kind
    waiter.wake()
  }

  #dropIfIdle(tenant: string, q: TenantQueue): void {
    if (q.waiters.length === 0 && q.probe === undefined && q.timer === undefined) {
      this.#queues.delete(tenant)
    }
  }
}
