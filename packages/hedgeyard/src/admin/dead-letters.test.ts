import { redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { describe, expect, it } from 'vitest'
import { retryDeadLetters } from './dead-letters.js'

describe('retryDeadLetters', () => {
  it('refuses a call that names no letters, and a timeout longer than a timer waits', async () => {
    const ref = { redis: redisUrl(), pool: uniquePool('deadargs') }
    await expect(retryDeadLetters(ref)).rejects.toThrow(/retry needs deadIds, or all: true/)
    // The workers arm a timer for the job's deadline: a longer one would fire after 1 ms.
    await expect(retryDeadLetters({ ...ref, all: true, timeoutMs: 2 ** 31 })).rejects.toThrow(
      /timeoutMs must be an integer between 1 and 2147483647 ms, the longest a Node.js timer waits \(got 2147483648\)/,
    )
  })
})
