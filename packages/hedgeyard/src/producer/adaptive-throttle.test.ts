import { describe, expect, it } from 'vitest'
import { AdaptiveThrottle } from './adaptive-throttle.js'

describe('AdaptiveThrottle', () => {
  it('refuses nothing while the pool accepts, however many requests', () => {
    const t = new AdaptiveThrottle(2, 120_000, 20)
    for (let i = 0; i < 1_000; i++) {
      expect(t.shouldShed(1_000 + i, 0)).toBe(false)
      t.record(1_000 + i, true)
    }
    expect(t.rejectProbability(2_000)).toBe(0)
  })

  it('sheds most requests during an outage, with the SRE formula, but not before minRequests', () => {
    const t = new AdaptiveThrottle(2, 120_000, 20)
    const now = 1_000
    // Requests sent and not answered yet do not count: a burst is not an outage.
    for (let i = 0; i < 50; i++) expect(t.shouldShed(now, 0)).toBe(false)
    for (let i = 0; i < 19; i++) t.record(now, false)
    expect(t.rejectProbability(now)).toBe(0)
    t.record(now, false)
    // 20 failures, 0 accepts: p = 20 / 21; a refused request counts as one more failure.
    expect(t.rejectProbability(now)).toBeCloseTo(20 / 21)
    expect(t.shouldShed(now, 0.9)).toBe(true)
    expect(t.rejectProbability(now)).toBeCloseTo(21 / 22)
    // Accepts bring it down: 10 accepts of 31 requests leave (31 - 20) / 32; 21 of 42 nothing.
    for (let i = 0; i < 10; i++) t.record(now, true)
    expect(t.rejectProbability(now)).toBeCloseTo(11 / 32)
    for (let i = 0; i < 11; i++) t.record(now, true)
    expect(t.rejectProbability(now)).toBe(0)
  })

  it('forgets what is older than its window', () => {
    const t = new AdaptiveThrottle(2, 120_000, 20)
    for (let i = 0; i < 100; i++) t.record(1_000, false)
    expect(t.rejectProbability(1_000)).toBeGreaterThan(0.9)
    expect(t.rejectProbability(1_000 + 60_000)).toBeGreaterThan(0.9)
    expect(t.rejectProbability(1_000 + 130_001)).toBe(0)
  })
})
