import { afterEach, describe, expect, it, vi } from 'vitest'
import { MAX_PROBE_DELAY_MS, probeDelayMs, type TenantWaiter, TenantWaits } from './tenant-waits.js'

afterEach(() => {
  vi.useRealTimers()
})

/** Waiters that record the order they were woken in. */
function waiters(count: number, woken: number[]): TenantWaiter[] {
  return Array.from({ length: count }, (_, i) => ({ wake: () => woken.push(i) }))
}

describe('tenant waits', () => {
  it('sends one parked request, oldest first, for each slot a job of this producer frees', () => {
    vi.useFakeTimers()
    const waits = new TenantWaits()
    const woken: number[] = []
    const [a, b, c] = waiters(3, woken) as [TenantWaiter, TenantWaiter, TenantWaiter]
    waits.park('t', a)
    waits.park('t', b)
    waits.park('t', c)
    waits.freed('t')
    expect(woken).toEqual([0])
    // Another slot freed while the probe is out: the next request goes when the probe is answered.
    waits.freed('t')
    expect(woken).toEqual([0])
    waits.answered('t', a, true)
    expect(woken).toEqual([0, 1])
    // Placed, and no other slot was freed: nothing more until a job ends, or the backoff.
    waits.answered('t', b, true)
    expect(woken).toEqual([0, 1])
    waits.freed('t')
    expect(woken).toEqual([0, 1, 2])
    // Refused (another producer took the slot): back at the head of the queue.
    waits.park('t', c)
    expect(waits.waiting('t')).toBe(1)
    vi.advanceTimersByTime(probeDelayMs(0))
    expect(woken).toEqual([0, 1, 2, 2])
  })

  it('probes after a backoff that grows with each refusal, up to its maximum, for slots freed elsewhere', () => {
    vi.useFakeTimers()
    const waits = new TenantWaits()
    const woken: number[] = []
    const [a, b] = waiters(2, woken) as [TenantWaiter, TenantWaiter]
    waits.park('t', a)
    waits.park('t', b)
    vi.advanceTimersByTime(probeDelayMs(0))
    expect(woken).toEqual([0])
    for (let round = 1; round < 12; round++) {
      waits.park('t', a)
      vi.advanceTimersByTime(probeDelayMs(round) - 1)
      expect(woken).toHaveLength(round)
      vi.advanceTimersByTime(1)
      expect(woken).toHaveLength(round + 1)
    }
    expect(probeDelayMs(11)).toBe(MAX_PROBE_DELAY_MS)
    // A timer probe that finds room sends the next one at once, and the backoff starts again.
    waits.answered('t', a, true)
    expect(woken.at(-1)).toBe(1)
    waits.park('t', b)
    vi.advanceTimersByTime(probeDelayMs(1))
    expect(woken.at(-1)).toBe(1)
    expect(woken).toHaveLength(14)
  })

  it('forgets a request that left, parked or probing, and keeps tenants apart', () => {
    vi.useFakeTimers()
    const waits = new TenantWaits()
    const woken: number[] = []
    const [a, b, c] = waiters(3, woken) as [TenantWaiter, TenantWaiter, TenantWaiter]
    waits.park('t', a)
    waits.park('t', b)
    waits.park('u', c)
    waits.leave('t', a)
    waits.freed('t')
    expect(woken).toEqual([1])
    // The probe leaves without an answer (its submit timed out): nothing is left for 't'.
    waits.leave('t', b)
    expect(waits.waiting('t')).toBe(0)
    expect(waits.waiting('u')).toBe(1)
    waits.freed('u')
    expect(woken).toEqual([1, 2])
    waits.answered('u', c, false)
    vi.advanceTimersByTime(1_000)
    expect(woken).toEqual([1, 2])
    expect(waits.waiting('u')).toBe(0)
  })
})
