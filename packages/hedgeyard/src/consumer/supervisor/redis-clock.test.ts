import { describe, expect, it } from 'vitest'
import { RedisClock } from './redis-clock.js'

describe('RedisClock', () => {
  it('reads the local clock until an offset is measured', () => {
    const clock = new RedisClock()
    expect(clock.offsetMs).toBe(0)
    const before = Date.now()
    const now = clock.now()
    expect(now).toBeGreaterThanOrEqual(before)
    expect(now).toBeLessThanOrEqual(Date.now())
  })

  it('takes Redis time as read halfway through the round trip', () => {
    const clock = new RedisClock()
    // Sent at 1,000, answered at 1,100: Redis said 6,050 at about 1,050, so it is 5,000 ms ahead.
    clock.measure(1_000, 6_050, 1_100)
    expect(clock.offsetMs).toBe(5_000)
    // A host whose clock is ahead of Redis gets a negative offset.
    clock.measure(10_000, 7_010, 10_020)
    expect(clock.offsetMs).toBe(-3_000)
    const local = Date.now()
    expect(clock.now() - local).toBeGreaterThanOrEqual(-3_000)
    expect(clock.now() - Date.now()).toBeLessThanOrEqual(-3_000)
  })
})
