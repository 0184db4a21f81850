import { afterEach, describe, expect, it, vi } from 'vitest'
import { SaturationWaits } from './saturation-waits.js'
import { probeDelayMs, type TenantWaiter } from './tenant-waits.js'

afterEach(() => {
  vi.useRealTimers()
})

/** Waiters that record the order they were woken in. */
function waiters(count: number, woken: number[]): TenantWaiter[] {
  return Array.from({ length: count }, (_, i) => ({ wake: () => woken.push(i) }))
}

describe('saturation waits', () => {
  it('sends as many parked requests as jobs of this producer ended, oldest first, at once', () => {
    vi.useFakeTimers()
    const waits = new SaturationWaits()
    const woken: number[] = []
    const all = waiters(5, woken)
    for (const w of all) waits.park(w)
    waits.freed(3)
    expect(woken).toEqual([0, 1, 2])
    expect(waits.size).toBe(5)
    waits.answered(all[0] as TenantWaiter, true)
    waits.answered(all[1] as TenantWaiter, true)
    waits.answered(all[2] as TenantWaiter, true)
    expect(waits.size).toBe(2)
    // More ended than are parked: the rest is nothing.
    waits.freed(10)
    expect(woken).toEqual([0, 1, 2, 3, 4])
  })

  it('puts a request refused again back in front of those parked after it, in the order they came back', () => {
    vi.useFakeTimers()
    const waits = new SaturationWaits()
    const woken: number[] = []
    const [a, b, c, d] = waiters(4, woken) as [TenantWaiter, TenantWaiter, TenantWaiter, TenantWaiter]
    for (const w of [a, b, c, d]) waits.park(w)
    waits.freed(2)
    // Another producer took both slots: a and b are refused again, and go before c and d.
    waits.park(a)
    waits.park(b)
    waits.freed(4)
    expect(woken).toEqual([0, 1, 0, 1, 2, 3])
  })

  it('probes one request after a backoff that grows with each refusal; a probe placed sends two more at once', () => {
    vi.useFakeTimers()
    const waits = new SaturationWaits()
    const woken: number[] = []
    const all = waiters(8, woken)
    const [a] = all as [TenantWaiter]
    for (const w of all) waits.park(w)
    vi.advanceTimersByTime(probeDelayMs(0))
    expect(woken).toEqual([0])
    for (let round = 1; round < 5; round++) {
      waits.park(a)
      vi.advanceTimersByTime(probeDelayMs(round) - 1)
      expect(woken).toHaveLength(round)
      vi.advanceTimersByTime(1)
      expect(woken).toHaveLength(round + 1)
    }
    // Room found (workers started, another producer's jobs ended): the backlog goes 1, 2, 4...
    waits.answered(a, true)
    expect(woken.slice(5)).toEqual([1, 2])
    waits.answered(all[1] as TenantWaiter, true)
    waits.answered(all[2] as TenantWaiter, true)
    expect(woken.slice(5)).toEqual([1, 2, 3, 4, 5, 6])
    // The room is gone: the four probes out are refused, go back to the front in the order they
    // came back, and the next probe waits a step longer for each.
    for (const i of [3, 4, 5, 6]) waits.park(all[i] as TenantWaiter)
    vi.advanceTimersByTime(probeDelayMs(4) - 1)
    expect(woken).toHaveLength(11)
    vi.advanceTimersByTime(1)
    expect(woken.at(-1)).toBe(3)
  })

  it('forgets a request that ended while parked or while it was sent, and stops its timer when none is left', () => {
    vi.useFakeTimers()
    const waits = new SaturationWaits()
    const woken: number[] = []
    const [a, b, c] = waiters(3, woken) as [TenantWaiter, TenantWaiter, TenantWaiter]
    waits.park(a)
    waits.park(b)
    waits.park(c)
    waits.leave(b)
    waits.freed(1)
    waits.leave(a)
    waits.freed(5)
    expect(woken).toEqual([0, 2])
    waits.leave(c)
    expect(waits.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })

  it('starts a later wait with the shortest backoff, whatever the probes of an earlier one met', () => {
    vi.useFakeTimers()
    const waits = new SaturationWaits()
    const woken: number[] = []
    const [a, b] = waiters(2, woken) as [TenantWaiter, TenantWaiter]
    waits.park(a)
    for (let round = 0; round < 6; round++) {
      vi.advanceTimersByTime(probeDelayMs(round))
      waits.park(a)
    }
    waits.leave(a)
    waits.park(b)
    vi.advanceTimersByTime(probeDelayMs(0))
    expect(woken.at(-1)).toBe(1)
  })

  it('keeps its order over many thousands of requests parked and sent again', () => {
    const waits = new SaturationWaits()
    const woken: number[] = []
    const all = waiters(5_000, woken)
    for (const w of all) waits.park(w)
    for (let i = 0; i < 5_000; i += 7) waits.freed(7)
    expect(woken).toEqual(Array.from({ length: 5_000 }, (_, i) => i))
    expect(waits.size).toBe(5_000)
    for (const w of all) waits.leave(w)
    expect(waits.size).toBe(0)
  })
})
