import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import type { Envelope } from '../protocol/codec.js'
import { HedgeyardError } from '../protocol/errors.js'
import type { DispatchItem, DispatchOutcome } from '../protocol/scripts/dispatch.js'
import { CopyRace, type RaceCounters, type RaceDeps, type RacePlan } from './copy-race.js'
import type { DispatchListener } from './dispatch-batcher.js'
import { HedgeBudget } from './hedge-budget.js'
import { SaturationWaits } from './saturation-waits.js'
import { TenantWaits } from './tenant-waits.js'

/** Our dispatch batcher's part a race uses: it keeps each copy for the test to answer. */
class FakeBatcher {
  readonly sent: { item: DispatchItem; listener: DispatchListener }[] = []

  send(item: DispatchItem, listener: DispatchListener): void {
    this.sent.push({ item, listener })
  }

  get items(): DispatchItem[] {
    return this.sent.map((s) => s.item)
  }

  /** The dispatch script queued copy `i` (0 for the first sent) on `workerId`. */
  queued(i: number, workerId: string): void {
    this.answer(i, undefined, { status: 'queued', workerId, isAffinityHit: false })
  }

  refused(i: number, outcome: Exclude<DispatchOutcome, { status: 'queued' }>): void {
    this.answer(i, undefined, outcome)
  }

  answer(i: number, err: unknown, outcome?: DispatchOutcome): void {
    const copy = this.sent[i]
    if (copy === undefined) throw new Error(`copy ${i} was not sent`)
    copy.listener.dispatched(err, outcome)
  }
}

interface Settled {
  err: unknown
  value?: unknown
}

function counters(): RaceCounters {
  return {
    affinityHits: 0,
    affinityMisses: 0,
    saturated: 0,
    rateLimited: 0,
    hedgesSent: 0,
    hedgesWon: 0,
    hedgesCancelled: 0,
    hedgesDenied: 0,
    retriesSent: 0,
  }
}

/** A race of one submit with `plan`'s options, settling as the dispatcher's does (it stops the race). */
function race(plan: Partial<RacePlan> = {}, budget = new HedgeBudget(0.1, 10)) {
  const batcher = new FakeBatcher()
  const costs: number[] = []
  const deps: RaceDeps = {
    pool: 'pool-1',
    batcher,
    budget,
    counters: counters(),
    tenants: new TenantWaits(),
    saturation: new SaturationWaits(),
    releaseSlot: () => {},
    costReported: (_plan, units) => costs.push(units),
  }
  const settled: Settled[] = []
  const full: RacePlan = {
    jobId: 'job-1',
    session: '',
    payload: '{}',
    deadline: Date.now() + 10_000,
    maxAttempts: 3,
    onSaturated: 'reject',
    cost: 1,
    onRateLimited: 'wait',
    onRedisUnavailable: 'wait',
    ...plan,
  }
  const r: CopyRace = new CopyRace(deps, full, (err, value) => {
    settled.push({ err, value })
    r.stop()
  })
  r.start()
  return { r, batcher, counters: deps.counters, settled, costs, saturation: deps.saturation }
}

const ok = (workerId: string, copy: number, value: unknown): Envelope => ({ ok: true, value, workerId, copy })
const failed = (workerId: string, copy: number, retryable: boolean): Envelope => ({
  ok: false,
  workerId,
  copy,
  error: { code: 'UPSTREAM', name: 'Error', message: `failed on ${workerId}`, retryable },
})
const HEDGE = { delayMs: 100, maxCopies: 2, isTied: false }

/**
 * Lets `ms` pass on the fake clock, then one turn of the event loop: a hedge that comes due looks
 * at the sockets first (setImmediate, left real), then decides.
 */
async function elapse(ms: number): Promise<void> {
  vi.advanceTimersByTime(ms)
  await new Promise((resolve) => setImmediate(resolve))
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
})
afterEach(() => {
  vi.useRealTimers()
})

describe('CopyRace, one copy', () => {
  it('sends a plain job once, and settles with its result', async () => {
    const { r, batcher, settled } = race()
    expect(r.isRacing).toBe(false)
    expect(batcher.items).toEqual([
      expect.objectContaining({
        jobId: 'job-1',
        attempt: 1,
        race: '',
        copies: 1,
        exclude: '',
        maxAttempts: 3,
      }),
    ])
    batcher.queued(0, 'w1')
    r.onEnvelope(ok('w1', 1, 42))
    expect(settled).toEqual([{ err: undefined, value: 42 }])
    await elapse(60_000)
    expect(batcher.sent).toHaveLength(1)
  })

  it('settles a plain job that failed with its error: no copy is sent again', () => {
    const { r, batcher, settled } = race()
    batcher.queued(0, 'w1')
    r.onEnvelope(failed('w1', 1, true))
    expect(settled[0]?.err).toMatchObject({ code: 'HANDLER_ERROR', message: 'Error: failed on w1' })
    expect(batcher.sent).toHaveLength(1)
  })

  it('fails with the error of a dispatch call that failed', () => {
    const { batcher, settled } = race()
    const down = new HedgeyardError('REDIS_UNAVAILABLE', 'Redis is away')
    batcher.answer(0, down)
    expect(settled).toEqual([{ err: down, value: undefined }])
  })

  it('passes on the cost a worker reported', () => {
    const { r, batcher, costs } = race()
    batcher.queued(0, 'w1')
    r.onEnvelope({ ok: true, value: 1, workerId: 'w1', copy: 1, cost: 7 })
    expect(costs).toEqual([7])
  })
})

describe('CopyRace, hedged', () => {
  it('sends a second copy to another worker after the delay; the first success wins it', async () => {
    const { r, batcher, counters, settled } = race({ hedge: HEDGE })
    batcher.queued(0, 'w1')
    await elapse(99)
    expect(batcher.sent).toHaveLength(1)
    await elapse(1)
    expect(batcher.items[1]).toMatchObject({ attempt: 2, race: 'h', exclude: 'w1', maxAttempts: 4 })
    batcher.queued(1, 'w2')
    expect(counters.hedgesSent).toBe(1)
    r.onEnvelope(ok('w2', 2, 'from the hedge'))
    expect(settled).toEqual([{ err: undefined, value: 'from the hedge' }])
    expect(counters).toMatchObject({ hedgesWon: 1, hedgesCancelled: 1 })
  })

  it('holds a hedge that comes due before the first dispatch reply, to avoid the worker it names', async () => {
    const { batcher } = race({ hedge: HEDGE })
    await elapse(500)
    expect(batcher.sent).toHaveLength(1)
    batcher.queued(0, 'w1')
    expect(batcher.items[1]).toMatchObject({ attempt: 2, exclude: 'w1' })
  })

  it('sends no hedge the budget refuses, and counts it', async () => {
    const { r, batcher, counters, settled } = race({ hedge: HEDGE }, new HedgeBudget(0, 0))
    batcher.queued(0, 'w1')
    await elapse(1_000)
    expect(batcher.sent).toHaveLength(1)
    expect(counters.hedgesDenied).toBe(1)
    r.onEnvelope(ok('w1', 1, 'slow but fine'))
    expect(settled).toEqual([{ err: undefined, value: 'slow but fine' }])
  })

  it('queues a tied job as two copies at once, and sends no hedge later', async () => {
    const { batcher } = race({ hedge: { ...HEDGE, isTied: true } })
    expect(batcher.items).toEqual([expect.objectContaining({ race: 't', copies: 2 })])
    batcher.queued(0, 'w1')
    await elapse(10_000)
    expect(batcher.sent).toHaveLength(1)
  })

  it('ends at once when the job is cancelled from outside (copy 0), even with copies out', async () => {
    const { r, batcher, settled } = race({ hedge: HEDGE })
    batcher.queued(0, 'w1')
    r.onEnvelope({
      ok: false,
      workerId: '',
      copy: 0,
      error: { code: 'CANCELLED', name: 'HedgeyardError', message: 'cancelled by its caller' },
    })
    expect(settled[0]?.err).toMatchObject({ code: 'CANCELLED' })
    await elapse(1_000)
    expect(batcher.sent).toHaveLength(1)
  })

  it('after stop(), sends nothing more and ignores late results', async () => {
    const { r, batcher, settled } = race({ hedge: HEDGE })
    batcher.queued(0, 'w1')
    r.stop()
    await elapse(1_000)
    r.onEnvelope(ok('w1', 1, 'late'))
    expect(batcher.sent).toHaveLength(1)
    expect(settled).toEqual([])
  })
})

describe('CopyRace, retried', () => {
  const RETRY = { maxCopies: 3, backoffMs: 50 }

  it('sends a retry to another worker after the backoff; a failure that is not retryable ends the race', async () => {
    const { r, batcher, counters, settled } = race({ retry: RETRY })
    batcher.queued(0, 'w1')
    r.onEnvelope(failed('w1', 1, true))
    await elapse(49)
    expect(batcher.sent).toHaveLength(1)
    await elapse(1)
    expect(batcher.items[1]).toMatchObject({ attempt: 2, race: 'h', exclude: 'w1' })
    batcher.queued(1, 'w2')
    expect(counters.retriesSent).toBe(1)
    r.onEnvelope(failed('w2', 2, false))
    expect(settled[0]?.err).toMatchObject({ code: 'HANDLER_ERROR', message: 'Error: failed on w2' })
    // Every copy's failure, in copy order, as @hedgeyard/race's hedge gives its AggregateError's.
    const errors = (settled[0]?.err as HedgeyardError | undefined)?.errors
    expect(errors?.map((e) => [e.code, e.message, e.workerId])).toEqual([
      ['HANDLER_ERROR', 'Error: failed on w1', 'w1'],
      ['HANDLER_ERROR', 'Error: failed on w2', 'w2'],
    ])
    await elapse(1_000)
    expect(batcher.sent).toHaveLength(2)
  })

  it('gives each failed copy in copy order when the hedge fails before the first copy', async () => {
    const { r, batcher, settled } = race({ hedge: HEDGE })
    batcher.queued(0, 'w1')
    await elapse(100)
    batcher.queued(1, 'w2')
    r.onEnvelope(failed('w2', 2, false))
    expect(settled).toEqual([])
    r.onEnvelope(failed('w1', 1, false))
    const err = settled[0]?.err as HedgeyardError
    expect(err.message).toBe('Error: failed on w1')
    expect(err.errors?.map((e) => e.workerId)).toEqual(['w1', 'w2'])
  })

  it('a plain job that fails carries no list of copies', () => {
    const { r, batcher, settled } = race()
    batcher.queued(0, 'w1')
    r.onEnvelope(failed('w1', 1, false))
    expect(settled[0]?.err).toBeInstanceOf(HedgeyardError)
    expect((settled[0]?.err as HedgeyardError | undefined)?.errors).toBeUndefined()
  })

  it('settles with the last error once every copy failed, saying when the budget refused a retry', () => {
    const { r, batcher, settled } = race({ retry: { maxCopies: 2, backoffMs: 0 } }, new HedgeBudget(0, 0))
    batcher.queued(0, 'w1')
    r.onEnvelope(failed('w1', 1, true))
    expect(batcher.sent).toHaveLength(1)
    const err = settled[0]?.err as HedgeyardError
    expect(err).toMatchObject({ code: 'HANDLER_ERROR', isRetryDenied: true, isRetryable: true })
    expect(err.message).toMatch(/no retry: the hedging budget/)
  })
})

describe('CopyRace, refused by the pool', () => {
  it("fails with SATURATED when no worker has room and the caller won't wait", () => {
    const { batcher, counters, settled } = race()
    batcher.refused(0, { status: 'SATURATED' })
    expect(settled[0]?.err).toMatchObject({ code: 'SATURATED' })
    expect(counters.saturated).toBe(1)
  })

  it('with onSaturated wait, sends the first copy again after a short backoff', async () => {
    const { batcher, settled } = race({ onSaturated: 'wait' })
    batcher.refused(0, { status: 'SATURATED' })
    await elapse(5)
    expect(batcher.items.map((item) => item.attempt)).toEqual([1, 1])
    batcher.queued(1, 'w1')
    expect(settled).toEqual([])
  })

  it('a hedged job waiting for room sends no hedge of a copy that is not out, goes again when a job ends, and leaves the queue', async () => {
    // The hedge comes due while the first copy's dispatch reply is out, then the copy is refused.
    const due = race({ onSaturated: 'wait', hedge: HEDGE })
    await elapse(HEDGE.delayMs)
    due.batcher.refused(0, { status: 'SATURATED' })
    await elapse(0)
    expect(due.batcher.items.map((item) => item.attempt)).toEqual([1])
    // The hedge's timer fired and its decision waits for the sockets, when the refusal comes in.
    const timed = race({ onSaturated: 'wait', hedge: HEDGE })
    vi.advanceTimersByTime(HEDGE.delayMs)
    timed.batcher.refused(0, { status: 'SATURATED' })
    await elapse(0)
    expect(timed.batcher.items.map((item) => item.attempt)).toEqual([1])
    expect(timed.settled).toEqual([])
    // A job of this producer ended: the first copy goes again, is placed, and is hedged as usual.
    timed.saturation.freed(1)
    expect(timed.batcher.items.map((item) => item.attempt)).toEqual([1, 1])
    timed.batcher.queued(1, 'w1')
    expect(timed.saturation.size).toBe(0)
    await elapse(HEDGE.delayMs)
    expect(timed.batcher.items.map((item) => item.attempt)).toEqual([1, 1, 2])
    timed.r.onEnvelope(ok('w1', 1, 'v'))
    expect(timed.settled).toEqual([{ err: undefined, value: 'v' }])
    // Ended while parked (its caller gave up): it leaves the queue, and the next wait probes again.
    due.r.stop()
    expect(due.saturation.size).toBe(0)
  })

  it('over the quota: waits exactly the time the quota gives, or fails with RATE_LIMITED and it', async () => {
    const limited = { status: 'RATE_LIMITED', retryAfterMs: 200, isTenant: false } as const
    const waiting = race({ onRateLimited: 'wait' })
    waiting.batcher.refused(0, limited)
    await elapse(199)
    expect(waiting.batcher.sent).toHaveLength(1)
    await elapse(1)
    expect(waiting.batcher.sent).toHaveLength(2)
    expect(waiting.settled).toEqual([])

    const rejecting = race({ onRateLimited: 'reject' })
    rejecting.batcher.refused(0, limited)
    expect(rejecting.settled[0]?.err).toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 200 })
  })
})
