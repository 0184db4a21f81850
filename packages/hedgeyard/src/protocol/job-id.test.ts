import { decodeTime } from 'ulid'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { jobIdFactory } from './job-id.js'

const CROCKFORD = /^[0-9A-HJKMNP-TV-Z]{26}$/

describe('jobIdFactory', () => {
  afterEach(() => vi.restoreAllMocks())

  it('makes ULIDs of this time that sort in the order they were made', () => {
    const next = jobIdFactory()
    const before = Date.now()
    const ids = Array.from({ length: 1_000 }, () => next())
    for (const id of ids) {
      expect(id).toMatch(CROCKFORD)
      expect(decodeTime(id)).toBeGreaterThanOrEqual(before)
      expect(decodeTime(id)).toBeLessThanOrEqual(Date.now())
    }
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
  })

  it('counts on across the two halves of its 40-bit counter', () => {
    // A counter that starts at 2^20 - 2: the next ids carry 2^20 - 1, 2^20, 2^20 + 1.
    vi.spyOn(Math, 'random').mockReturnValue((2 ** 20 - 2) / 2 ** 32)
    const next = jobIdFactory()
    const tails = Array.from({ length: 3 }, () => next().slice(18))
    expect(tails).toEqual(['0000ZZZZ', '00010000', '00010001'])
  })
})
