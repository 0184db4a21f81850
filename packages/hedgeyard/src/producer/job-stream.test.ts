import { describe, expect, it } from 'vitest'
import { HedgeyardError } from '../protocol/errors.js'
import { createJobStream, STREAM_HIGH_WATER } from './job-stream.js'

function make() {
  const calls = { exits: 0, drained: 0 }
  const { stream, sink } = createJobStream<number, string>(
    'job-1',
    () => {
      calls.exits++
      sink.end(new HedgeyardError('CANCELLED', 'left'))
    },
    () => {
      calls.drained++
    },
  )
  return { stream, sink, calls }
}

describe('JobStream', () => {
  it('yields chunks pushed before and while the reader waits, in order, then ends with the result', async () => {
    const { stream, sink } = make()
    sink.push({ seq: 1, data: 10 })
    const seen: number[] = []
    const reading = (async () => {
      for await (const chunk of stream) seen.push(chunk.seq)
    })()
    await new Promise((r) => setTimeout(r, 5))
    sink.push({ seq: 2, data: 20 })
    sink.end(undefined, 'done')
    await reading
    expect(seen).toEqual([1, 2])
    await expect(stream.result).resolves.toBe('done')
  })

  it("throws the job's error from the loop after the chunks before it, and from result", async () => {
    const { stream, sink } = make()
    sink.push({ seq: 1, data: 1 })
    sink.end(new HedgeyardError('WORKER_LOST', 'lost'))
    const seen: number[] = []
    await expect(
      (async () => {
        for await (const chunk of stream) seen.push(chunk.seq)
      })(),
    ).rejects.toMatchObject({ code: 'WORKER_LOST' })
    expect(seen).toEqual([1])
    await expect(stream.result).rejects.toMatchObject({ code: 'WORKER_LOST' })
  })

  it('calls onExit when the reader leaves early, and not when it leaves after the end', async () => {
    const early = make()
    early.sink.push({ seq: 1, data: 1 })
    for await (const _ of early.stream) break
    expect(early.calls.exits).toBe(1)
    await expect(early.stream.result).rejects.toMatchObject({ code: 'CANCELLED' })
    // Pushed after the reader left: dropped.
    early.sink.push({ seq: 2, data: 2 })
    expect(early.sink.wantsMore()).toBe(false)

    const late = make()
    late.sink.push({ seq: 1, data: 1 })
    late.sink.end(undefined, 'ok')
    for await (const _ of late.stream) break
    expect(late.calls.exits).toBe(0)
    await expect(late.stream.result).resolves.toBe('ok')
  })

  it('stops wanting chunks at the high-water mark and says when the reader has caught up halfway', async () => {
    const { stream, sink, calls } = make()
    for (let i = 1; i <= STREAM_HIGH_WATER; i++) sink.push({ seq: i, data: i })
    expect(sink.wantsMore()).toBe(false)
    const it = stream[Symbol.asyncIterator]()
    for (let i = 0; i < STREAM_HIGH_WATER / 2; i++) await it.next()
    expect(calls.drained).toBe(1)
    expect(sink.wantsMore()).toBe(true)
  })
})
