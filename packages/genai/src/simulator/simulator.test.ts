import { describe, expect, it } from 'vitest'
import { formatDuration } from './google-error.js'
import { defaultBehaviour, mergeBehaviour } from './options.js'
import { KeyQuota } from './quota.js'
import { countWords, fakeGeminiText, splitReply } from './reply.js'

describe('KeyQuota', () => {
  it('accepts the quota per key in any 1-second window and says when the next slot frees', () => {
    const quota = new KeyQuota()
    expect([0, 100, 200].map((t) => quota.take('a', 2, t))).toEqual([0, 0, 800])
    expect(quota.take('b', 2, 200)).toBe(0)
    expect(quota.take('a', 2, 999)).toBe(1)
    expect(quota.take('a', 2, 1000)).toBe(0)
    expect(quota.take('a', 0, 1000)).toBe(0)
  })
})

describe('replies', () => {
  it('are the same for the same prompt, and split into chunks that add up to them', () => {
    const text = fakeGeminiText('hello', 10)
    expect(fakeGeminiText('hello', 10)).toBe(text)
    expect(fakeGeminiText('hello!', 10)).not.toBe(text)
    expect(countWords(fakeGeminiText('long', 100))).toBe(100)
    const pieces = splitReply(text, 4)
    expect(pieces.map(countWords)).toEqual([4, 4, 2])
    expect(pieces.join('')).toBe(text)
  })
})

describe('behaviour', () => {
  it('checks each setting, and names the known ones for an unknown one', () => {
    expect(mergeBehaviour(defaultBehaviour(), { quotaRps: 5 }).quotaRps).toBe(5)
    expect(() => mergeBehaviour(defaultBehaviour(), { stallRate: 2 })).toThrow(
      'stallRate must be a number from 0 to 1',
    )
    expect(() => mergeBehaviour(defaultBehaviour(), { chunkWords: 1.5 })).toThrow(
      'chunkWords must be an integer',
    )
    expect(() => mergeBehaviour(defaultBehaviour(), { latencyMs: 1 })).toThrow(
      /unknown setting 'latencyMs'.*medianMs/,
    )
  })

  it('writes retry delays as protobuf durations', () => {
    expect([1500, 1000, 987, 0.2].map(formatDuration)).toEqual(['1.5s', '1s', '0.987s', '0.001s'])
  })
})
