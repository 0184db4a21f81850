import { afterEach, describe, expect, it, vi } from 'vitest'
import { type RaceOutcome, race } from './race.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Settles with `value` (or rejects with it when it is an Error) after `ms`, or rejects when aborted. */
function settleAfter<T>(ms: number, value: T, signal: AbortSignal): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (value instanceof Error ? reject(value) : resolve(value)), ms)
    signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(signal.reason)
    })
  })
}

/** Never settles on its own; rejects with the abort reason. */
function untilAborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener('abort', () => reject(signal.reason)))
}

async function collect<A, T>(outcomes: AsyncIterable<RaceOutcome<A, T>>): Promise<RaceOutcome<A, T>[]> {
  const all: RaceOutcome<A, T>[] = []
  for await (const outcome of outcomes) all.push(outcome)
  return all
}

afterEach(() => {
  vi.useRealTimers()
})

describe('race: launching', () => {
  it('starts attempts one by one, stepMs apart, in args order', async () => {
    vi.useFakeTimers()
    const t0 = Date.now()
    const launches: [string, number, number][] = []
    const done = collect(
      race(
        ['a', 'b', 'c', 'd'],
        (arg, { index, signal }) => {
          launches.push([arg, index, Date.now() - t0])
          return settleAfter(1000, arg, signal)
        },
        { stepMs: 100 },
      ),
    )
    await vi.advanceTimersByTimeAsync(250)
    expect(launches).toEqual([
      ['a', 0, 0],
      ['b', 1, 100],
      ['c', 2, 200],
    ])
    await vi.advanceTimersByTimeAsync(2000)
    expect(launches.map(([, , atMs]) => atMs)).toEqual([0, 100, 200, 300])
    expect((await done).map((outcome) => outcome.index)).toEqual([0, 1, 2, 3])
  })

  it('yields outcomes in completion order, with ok, arg, index and value or error', async () => {
    vi.useFakeTimers()
    const boom = new Error('b failed')
    const durations: Record<string, [number, string | Error]> = { a: [300, 'A'], b: [50, boom], c: [10, 'C'] }
    const done = collect(
      race(['a', 'b', 'c'], (arg, { signal }) => settleAfter(...durations[arg]!, signal), { stepMs: 100 }),
    )
    await vi.advanceTimersByTimeAsync(1000)
    expect(await done).toEqual([
      { ok: false, arg: 'b', index: 1, error: boom },
      { ok: true, arg: 'c', index: 2, value: 'C' },
      { ok: true, arg: 'a', index: 0, value: 'A' },
    ])
  })

  it('launches the next attempt at once when one fails, and restarts the step from that launch', async () => {
    vi.useFakeTimers()
    const t0 = Date.now()
    const launchedAtMs: number[] = []
    const iterator = race(
      [0, 1, 2, 3],
      (i, { signal }) => {
        launchedAtMs.push(Date.now() - t0)
        return i === 0 ? settleAfter(10, new Error('fast failure'), signal) : untilAborted(signal)
      },
      { stepMs: 1000 },
    )[Symbol.asyncIterator]()
    const first = await Promise.all([iterator.next(), vi.advanceTimersByTimeAsync(10)])
    expect(first[0].value?.ok).toBe(false)
    expect(launchedAtMs).toEqual([0, 10])
    await vi.advanceTimersByTimeAsync(1500)
    expect(launchedAtMs).toEqual([0, 10, 1010])
    await iterator.return?.()
  })

  it('counts a task that throws synchronously as a failed attempt', async () => {
    const outcomes = await collect(
      race(
        ['bad', 'good'],
        (arg) => {
          if (arg === 'bad') throw new TypeError('not even a promise')
          return Promise.resolve(arg.toUpperCase())
        },
        { stepMs: 10_000 },
      ),
    )
    expect(outcomes.map((outcome) => outcome.ok)).toEqual([false, true])
    expect(outcomes[0]).toMatchObject({ ok: false, error: new TypeError('not even a promise') })
  })

  it('reads args lazily, so an endless generator works and is closed when the loop is left', async () => {
    let isClosed = false
    function* endless() {
      try {
        for (let i = 0; ; i++) yield i
      } finally {
        isClosed = true
      }
    }
    const seen: number[] = []
    for await (const outcome of race(endless(), async (i) => i * 2, { stepMs: 1 })) {
      if (outcome.ok) seen.push(outcome.value)
      if (seen.length === 3) break
    }
    expect(seen).toEqual([0, 2, 4])
    expect(isClosed).toBe(true)
  })

  it('ends with the error of args when reading them throws, aborting the running attempts', async () => {
    const broken = new Error('cannot read the next server')
    function* servers() {
      yield 'first'
      throw broken
    }
    const signals: AbortSignal[] = []
    const outcomes = collect(
      race(
        servers(),
        (_, { signal }) => {
          signals.push(signal)
          return untilAborted(signal)
        },
        { stepMs: 10 },
      ),
    )
    await expect(outcomes).rejects.toBe(broken)
    expect(signals.map((signal) => signal.reason)).toEqual([broken])
  })

  it('ends at once for empty args without calling the task', async () => {
    const task = vi.fn(async () => 1)
    expect(await collect(race([], task, { stepMs: 10 }))).toEqual([])
    expect(task).not.toHaveBeenCalled()
  })

  it('runs a fresh race for each for await over the same race value', async () => {
    const task = vi.fn(async (arg: string) => arg)
    const twice = race(['a', 'b'], task, { stepMs: 0 })
    const first = (await collect(twice)).map((o) => o.arg)
    const second = (await collect(twice)).map((o) => o.arg)
    expect([first.sort(), second.sort()]).toEqual([
      ['a', 'b'],
      ['a', 'b'],
    ])
    expect(task).toHaveBeenCalledTimes(4)
  })
})

describe('race: no burst after a slow consumer', () => {
  it('keeps launching one per step while the consumer is away, and never catches up on return', async () => {
    vi.useFakeTimers()
    const t0 = Date.now()
    const launchedAtMs: number[] = []
    const iterator = race(
      Array.from({ length: 20 }, (_, i) => i),
      (i, { signal }) => {
        launchedAtMs.push(Date.now() - t0)
        return i === 0 ? settleAfter(10, 'first', signal) : untilAborted(signal)
      },
      { stepMs: 100 },
    )[Symbol.asyncIterator]()
    await Promise.all([iterator.next(), vi.advanceTimersByTimeAsync(10)])
    // The consumer is busy for 5 steps and does not call next().
    await vi.advanceTimersByTimeAsync(500)
    expect(launchedAtMs).toEqual([0, 100, 200, 300, 400, 500])
    const pending = iterator.next()
    await vi.advanceTimersByTimeAsync(0)
    expect(launchedAtMs).toHaveLength(6)
    await vi.advanceTimersByTimeAsync(100)
    expect(launchedAtMs).toEqual([0, 100, 200, 300, 400, 500, 600])
    await iterator.return?.()
    expect(await pending).toEqual({ done: true, value: undefined })
  })

  it('spaces every launch by at least stepMs on real timers, whatever the consumer does', async () => {
    const stepMs = 40
    const launchedAtMs: number[] = []
    let seen = 0
    for await (const _ of race(
      Array.from({ length: 12 }, (_, i) => i),
      (i, { signal }) => {
        launchedAtMs.push(performance.now())
        return i === 0 ? Promise.resolve(i) : settleAfter(3 * stepMs, i, signal)
      },
      { stepMs },
    )) {
      seen++
      // The consumer is away for 5 steps after the first outcome, then keeps up.
      if (seen === 1) await sleep(5 * stepMs)
      if (seen === 4) break
    }
    expect(launchedAtMs.length).toBeGreaterThanOrEqual(6)
    const gapsMs = launchedAtMs.slice(1).map((atMs, i) => atMs - launchedAtMs[i]!)
    // 2 ms of slack: timers may fire a millisecond early when rounded to whole milliseconds.
    for (const gapMs of gapsMs) expect(gapMs).toBeGreaterThanOrEqual(stepMs - 2)
  })
})

describe('race: concurrency', () => {
  it('never runs more attempts at once than the cap, and still runs them all', async () => {
    let running = 0
    let maxRunning = 0
    const durationsMs = [40, 10, 30, 20, 10, 40, 20, 30]
    const outcomes = await collect(
      race(
        durationsMs,
        async (ms, { index }) => {
          running++
          maxRunning = Math.max(maxRunning, running)
          await sleep(ms)
          running--
          if (index % 3 === 0) throw new Error(`attempt ${index} failed`)
          return index
        },
        { stepMs: 1, concurrency: 2 },
      ),
    )
    expect(maxRunning).toBe(2)
    expect(outcomes.map((outcome) => outcome.index).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
  })

  it('at the cap, launches the waiting attempt as soon as one settles', async () => {
    vi.useFakeTimers()
    const t0 = Date.now()
    const launchedAtMs: number[] = []
    const done = collect(
      race(
        ['a', 'b'],
        (arg, { signal }) => {
          launchedAtMs.push(Date.now() - t0)
          return settleAfter(250, arg, signal)
        },
        { stepMs: 100, concurrency: 1 },
      ),
    )
    await vi.advanceTimersByTimeAsync(1000)
    expect(launchedAtMs).toEqual([0, 250])
    expect((await done).map((outcome) => outcome.arg)).toEqual(['a', 'b'])
  })
})

describe('race: cancellation', () => {
  it('aborts the running attempts and launches no more when the loop breaks', async () => {
    const signals: AbortSignal[] = []
    for await (const outcome of race(
      [0, 1, 2, 3, 4],
      (i, { signal }) => {
        signals.push(signal)
        return i === 2 ? Promise.resolve('winner') : untilAborted(signal)
      },
      { stepMs: 30 },
    )) {
      expect(outcome).toMatchObject({ ok: true, value: 'winner' })
      break
    }
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true, false])
    expect(signals[0]!.reason).toMatchObject({ name: 'AbortError' })
    await sleep(120)
    expect(signals).toHaveLength(3)
  })

  it('aborts the running attempts when the loop body throws, and the error reaches the caller', async () => {
    const signals: AbortSignal[] = []
    const loop = async () => {
      for await (const _ of race(
        ['x', 'y'],
        (arg, { signal }) => {
          signals.push(signal)
          return arg === 'x' ? untilAborted(signal) : Promise.resolve(arg)
        },
        { stepMs: 20 },
      )) {
        throw new Error('consumer failed')
      }
    }
    await expect(loop()).rejects.toThrow('consumer failed')
    expect(signals.map((signal) => signal.aborted)).toEqual([true, false])
  })

  it('throws the reason of opts.signal, aborts the running attempts with it and launches no more', async () => {
    const controller = new AbortController()
    const reason = new Error('caller gave up')
    const signals: AbortSignal[] = []
    const seen: unknown[] = []
    setTimeout(() => controller.abort(reason), 50)
    const loop = async () => {
      for await (const outcome of race(
        [0, 1, 2, 3, 4, 5, 6, 7],
        (i, { signal }) => {
          signals.push(signal)
          return i === 0 ? Promise.resolve(i) : untilAborted(signal)
        },
        { stepMs: 20, signal: controller.signal },
      )) {
        seen.push(outcome.index)
      }
    }
    await expect(loop()).rejects.toBe(reason)
    expect(seen).toEqual([0])
    const launched = signals.length
    expect(signals.slice(1).every((signal) => signal.aborted && signal.reason === reason)).toBe(true)
    await sleep(100)
    expect(signals).toHaveLength(launched)
  })

  it('throws at once without launching anything when opts.signal is already aborted', async () => {
    const task = vi.fn(async () => 1)
    const reason = new Error('too late')
    await expect(collect(race([1, 2], task, { stepMs: 10, signal: AbortSignal.abort(reason) }))).rejects.toBe(
      reason,
    )
    expect(task).not.toHaveBeenCalled()
  })

  it('leaves no timer behind, whether the race ends by itself or by break', async () => {
    vi.useFakeTimers()
    const ended = collect(
      race(['a', 'b'], (arg, { signal }) => settleAfter(10, arg === 'a' ? new Error('a') : arg, signal), {
        stepMs: 1000,
      }),
    )
    await vi.advanceTimersByTimeAsync(20)
    expect((await ended).map((outcome) => outcome.arg)).toEqual(['a', 'b'])
    expect(vi.getTimerCount()).toBe(0)

    const iterator = race([1, 2, 3], async (i) => i, { stepMs: 1000 })[Symbol.asyncIterator]()
    await iterator.next()
    expect(vi.getTimerCount()).toBe(1)
    await iterator.return?.()
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('race: options', () => {
  const task = async () => 1
  it.each([
    [{ stepMs: -1 }, RangeError, 'stepMs must be a finite number >= 0 (got -1)'],
    [{ stepMs: Number.NaN }, RangeError, 'stepMs must be a finite number >= 0 (got NaN)'],
    [{ stepMs: Number.POSITIVE_INFINITY }, RangeError, 'stepMs must be a finite number >= 0 (got Infinity)'],
    [
      { stepMs: 2 ** 31 },
      RangeError,
      'stepMs must be at most 2147483647, the longest timer delay (got 2147483648)',
    ],
    [{ stepMs: '50' }, TypeError, 'stepMs must be a finite number >= 0 (got "50")'],
    [
      { stepMs: 10, concurrency: 0 },
      RangeError,
      'concurrency must be a positive integer or Infinity (got 0)',
    ],
    [
      { stepMs: 10, concurrency: 1.5 },
      RangeError,
      'concurrency must be a positive integer or Infinity (got 1.5)',
    ],
    [
      { stepMs: 10, concurrency: '2' },
      TypeError,
      'concurrency must be a positive integer or Infinity (got "2")',
    ],
    [{ stepMs: 10, signal: {} }, TypeError, 'signal must be an AbortSignal (got [object Object])'],
  ])('rejects %o when race() is called', (opts, ErrorClass, message) => {
    // @ts-expect-error: invalid options on purpose, as plain JavaScript callers could pass them.
    const call = () => race([1], task, opts)
    expect(call).toThrow(ErrorClass)
    expect(call).toThrow(message)
  })

  it('accepts stepMs 0 and concurrency Infinity', async () => {
    const opts = { stepMs: 0, concurrency: Number.POSITIVE_INFINITY }
    expect(await collect(race([1, 2, 3], async (i) => i, opts))).toHaveLength(3)
  })
})
