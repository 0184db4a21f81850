import { describe, expect, it } from 'vitest'
import { aggregateChunks, type GenaiResponse } from './aggregate.js'

const chunk = (parts: object[], extra: object = {}, candidate: object = {}): GenaiResponse =>
  ({
    candidates: [{ content: { role: 'model', parts }, ...candidate }],
    modelVersion: 'm',
    ...extra,
  }) as GenaiResponse

describe('aggregateChunks', () => {
  it('joins the text of a stream into one part and keeps the last finish reason and usage', () => {
    const whole = aggregateChunks([
      chunk([{ text: 'Hello' }], { usageMetadata: { candidatesTokenCount: 1 } }),
      chunk([{ text: ', world' }], { usageMetadata: { candidatesTokenCount: 3 } }, { finishReason: 'STOP' }),
    ])
    expect(whole).toEqual({
      candidates: [{ content: { role: 'model', parts: [{ text: 'Hello, world' }] }, finishReason: 'STOP' }],
      modelVersion: 'm',
      usageMetadata: { candidatesTokenCount: 3 },
    })
  })

  it('keeps thoughts apart from the answer, and non-text parts as they came', () => {
    const call = { functionCall: { name: 'lookup', args: { q: 'x' } } }
    const whole = aggregateChunks([
      chunk([{ text: 'plan ', thought: true }]),
      chunk([{ text: 'it', thought: true }, { text: 'Answer' }]),
      chunk([call, { text: ' done' }]),
    ])
    expect(whole.candidates?.[0]?.content?.parts).toEqual([
      { text: 'plan it', thought: true },
      { text: 'Answer' },
      call,
      { text: ' done' },
    ])
  })

  it('gives no candidates for no chunks', () => {
    expect(aggregateChunks([])).toEqual({})
  })
})
