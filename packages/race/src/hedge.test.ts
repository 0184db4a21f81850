import { describe, expect, it, vi } from 'vitest'
import { hedge } from './hedge.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Never settles on its own; rejects with the abort reason. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
}

describe('hedge', () => {
  it('resolves with the first success, aborts the losers and launches no more', async () => {
    const signals: AbortSignal[] = []
    const value = await hedge(
      ['slow', 'fast', 'spare'],
      async (arg, { signal }) => {
        signals.push(signal)
        if (arg === 'slow') return untilAborted(signal)
        await sleep(10)
        return `${arg} answer`
      },
      { stepMs: 30 },
    )
    expect(value).toBe('fast answer')
    expect(signals.map((signal) => signal.aborted)).toEqual([true, false])
    expect(signals[0]!.reason).toMatchObject({ name: 'AbortError' })
    await sleep(100)
    expect(signals).toHaveLength(2)
  })

  it('moves on to the next attempt at once when one fails, and resolves with a later success', async () => {
    const startedAtMs = performance.now()
    const value = await hedge(
      [1, 2],
      async (i) => {
        if (i === 1) throw new Error('first attempt failed')
        return i
      },
      { stepMs: 5000 },
    )
    expect(value).toBe(2)
    expect(performance.now() - startedAtMs).toBeLessThan(1000)
  })

  it('rejects with an AggregateError of every failure, in attempt order, when all attempts fail', async () => {
    const error = await hedge(
      [0, 1, 2],
      async (i) => {
        // Attempt 0 fails last, so completion order differs from attempt order.
        await sleep(i === 0 ? 60 : 5)
        throw new Error(`attempt ${i} failed`)
      },
      { stepMs: 10 },
    ).catch((reason: unknown) => reason)
    expect(error).toBeInstanceOf(AggregateError)
    expect((error as AggregateError).message).toBe('all 3 attempts failed')
    expect((error as AggregateError).errors.map((e: Error) => e.message)).toEqual([
      'attempt 0 failed',
      'attempt 1 failed',
      'attempt 2 failed',
    ])
  })

  it('rejects with the reason of opts.signal and aborts the running attempts with it', async () => {
    const controller = new AbortController()
    const reason = new Error('caller gave up')
    const signals: AbortSignal[] = []
    setTimeout(() => controller.abort(reason), 50)
    const outcome = hedge(
      [1, 2, 3, 4, 5, 6],
      (_, { signal }) => {
        signals.push(signal)
        return untilAborted(signal)
      },
      { stepMs: 20, signal: controller.signal },
    )
    await expect(outcome).rejects.toBe(reason)
    expect(signals.length).toBeGreaterThan(0)
    expect(signals.every((signal) => signal.reason === reason)).toBe(true)
  })

  it('rejects with an AggregateError of no errors when args is empty', async () => {
    const task = vi.fn(async () => 1)
    const error = await hedge([], task, { stepMs: 10 }).catch((reason: unknown) => reason)
    expect(error).toBeInstanceOf(AggregateError)
    expect((error as AggregateError).errors).toEqual([])
    expect((error as AggregateError).message).toBe('no attempt was made: args is empty')
    expect(task).not.toHaveBeenCalled()
  })

  it('rejects with a RangeError naming the option when an option is invalid', async () => {
    await expect(hedge([1], async (i) => i, { stepMs: 10, concurrency: 0 })).rejects.toThrow(
      new RangeError('concurrency must be a positive integer or Infinity (got 0)'),
    )
  })
})
