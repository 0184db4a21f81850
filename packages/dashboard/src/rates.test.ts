import { describe, expect, it } from 'vitest'
import { RateWindow } from './rates.js'

const w = (workerId: string, processed: number, errors = 0) => ({ workerId, processed, errors })

describe('RateWindow', () => {
  it('has no rate before two snapshots, then jobs/s and the error rate over the window', () => {
    const rates = new RateWindow(5_000)
    expect(rates.push(1_000, [w('a', 10)])).toEqual({ jobsPerS: null, errorRate: null })
    // 20 more jobs in 1 s, 5 of them failed.
    expect(rates.push(2_000, [w('a', 30, 5)])).toEqual({ jobsPerS: 20, errorRate: 0.25 })
    // Idle for a second: the window holds 20 jobs in 2 s.
    expect(rates.push(3_000, [w('a', 30, 5)])).toEqual({ jobsPerS: 10, errorRate: 0.25 })
  })

  it('forgets samples older than the window', () => {
    const rates = new RateWindow(2_000)
    rates.push(0, [w('a', 0)])
    rates.push(1_000, [w('a', 100)])
    rates.push(2_000, [w('a', 100)])
    expect(rates.push(3_000, [w('a', 100)]).jobsPerS).toBe(0)
  })

  it('does not count a worker leaving as a negative rate, and counts a new or restarted one from zero', () => {
    const rates = new RateWindow(1_000)
    rates.push(0, [w('a', 500), w('b', 100)])
    // a left; c joined having finished 7 jobs; b restarted under the same id with 3.
    expect(rates.push(1_000, [w('b', 3), w('c', 7)])).toEqual({ jobsPerS: 10, errorRate: 0 })
  })

  it('reads counters that are not numbers as zero, and ignores a snapshot that is not newer', () => {
    const rates = new RateWindow(1_000)
    rates.push(1_000, [w('a', 5)])
    expect(rates.push(2_000, [w('a', Number.NaN), w('b', -4)])).toEqual({ jobsPerS: 0, errorRate: null })
    expect(rates.push(1_500, [w('a', 1e9)])).toEqual({ jobsPerS: 0, errorRate: null })
  })
})
