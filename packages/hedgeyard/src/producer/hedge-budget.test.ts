import { describe, expect, it } from 'vitest'
import { HedgeBudget, LatencyTracker } from './hedge-budget.js'

/** Takes tokens until the budget refuses; returns how many it gave. */
function drain(budget: HedgeBudget): number {
  let taken = 0
  while (budget.take()) taken++
  return taken
}

describe('HedgeBudget', () => {
  it('starts full, with `burst` extra copies to give', () => {
    const budget = new HedgeBudget(0.1, 3)
    expect(drain(budget)).toBe(3)
    expect(budget.take()).toBe(false)
  })

  it('earns `ratio` of a copy per submit: about one extra copy per ten submits at 0.1', () => {
    const budget = new HedgeBudget(0.1, 10)
    drain(budget)
    for (let i = 0; i < 9; i++) budget.earn()
    expect(budget.take()).toBe(false)
    budget.earn()
    expect(budget.take()).toBe(true)
    expect(budget.take()).toBe(false)
    for (let i = 0; i < 100; i++) budget.earn()
    expect(drain(budget)).toBe(10)
  })

  it('never holds more than `burst`, however long the pool goes without hedging', () => {
    const budget = new HedgeBudget(0.5, 2)
    for (let i = 0; i < 1_000; i++) budget.earn()
    budget.refund()
    expect(drain(budget)).toBe(2)
  })

  it('gives back the token of a copy that was not sent', () => {
    const budget = new HedgeBudget(0.1, 1)
    expect(budget.take()).toBe(true)
    budget.refund()
    expect(budget.take()).toBe(true)
    expect(budget.take()).toBe(false)
  })

  it('with a burst of 0 and no ratio, sends no extra copy at all', () => {
    const budget = new HedgeBudget(0, 0)
    for (let i = 0; i < 100; i++) budget.earn()
    expect(budget.take()).toBe(false)
  })
})

describe('LatencyTracker', () => {
  it('has no value before the first sample', () => {
    const tracker = new LatencyTracker(0.95)
    expect(tracker.value()).toBeUndefined()
    expect(tracker.quantiles()).toBeUndefined()
    expect(tracker.count).toBe(0)
  })

  it('gives the percentile of the samples by nearest rank, sorted as numbers (9 before 10)', () => {
    const tracker = new LatencyTracker(0.95, 1_000, 1)
    for (let ms = 100; ms >= 1; ms--) tracker.record(ms)
    expect(tracker.count).toBe(100)
    expect(tracker.value()).toBe(95)
    expect(tracker.quantiles()).toEqual({ p50: 50, p99: 99 })
  })

  it('keeps only the last `size` samples', () => {
    const tracker = new LatencyTracker(0.5, 10, 1)
    for (let ms = 1; ms <= 1_000; ms++) tracker.record(ms)
    expect(tracker.count).toBe(10)
    // The last ten: 991..1000; the median by nearest rank is the fifth.
    expect(tracker.value()).toBe(995)
    expect(tracker.quantiles()).toEqual({ p50: 995, p99: 1_000 })
  })

  it('recomputes its value only every `recomputeEvery` samples', () => {
    const tracker = new LatencyTracker(0.99, 100, 5)
    for (let i = 0; i < 5; i++) tracker.record(10)
    expect(tracker.value()).toBe(10)
    // Slow samples shift the percentile only once five have come in since the last computation.
    for (let i = 0; i < 4; i++) tracker.record(500)
    expect(tracker.value()).toBe(10)
    tracker.record(500)
    expect(tracker.value()).toBe(500)
  })
})
