import { describe, expect, it } from 'vitest'
import { isHedgeyardError } from '../protocol/errors.js'
import { DEFAULT_LIMIT_CLASS, MAX_JOB_COST } from '../protocol/wire.js'
import { checkSubmitOptions, MAX_COPIES, type SubmitOptions } from './submit-options.js'

const DEFAULTS = {
  timeoutMs: 30_000,
  maxAttempts: 3,
  hedgeDelayMs: 'auto' as const,
  onRedisUnavailable: 'wait' as const,
}

/** The message of the INVALID_ARGUMENT error the options get. */
function refusal(options: unknown): string {
  try {
    checkSubmitOptions(options as SubmitOptions, DEFAULTS)
  } catch (err) {
    if (isHedgeyardError(err, 'INVALID_ARGUMENT')) return err.message
    throw err
  }
  throw new Error('the options passed')
}

describe('checkSubmitOptions', () => {
  it("fills in the dispatcher's defaults for a submit without options", () => {
    expect(checkSubmitOptions({}, DEFAULTS)).toEqual({
      session: '',
      timeoutMs: 30_000,
      onSaturated: 'reject',
      maxAttempts: 3,
      hedge: undefined,
      retry: undefined,
      cost: 1,
      onRateLimited: 'wait',
      onRedisUnavailable: 'wait',
      limitKey: undefined,
      limitClass: DEFAULT_LIMIT_CLASS,
    })
  })

  it('keeps what the caller gave', () => {
    const checked = checkSubmitOptions(
      {
        session: 'chat-9',
        timeoutMs: 1_500,
        onSaturated: 'wait',
        maxAttempts: 7,
        cost: 250,
        onRateLimited: 'reject',
        onRedisUnavailable: 'reject',
        limitKey: 'org:1',
        limitClass: 'pro',
        signal: new AbortController().signal,
      },
      DEFAULTS,
    )
    expect(checked).toMatchObject({
      session: 'chat-9',
      timeoutMs: 1_500,
      onSaturated: 'wait',
      maxAttempts: 7,
      cost: 250,
      onRateLimited: 'reject',
      onRedisUnavailable: 'reject',
      limitKey: 'org:1',
      limitClass: 'pro',
    })
  })

  it('gives a hedge two copies racing after the default delay, and a retry three copies 100 ms apart', () => {
    const checked = checkSubmitOptions({ hedge: {}, retry: {} }, { ...DEFAULTS, hedgeDelayMs: 80 })
    expect(checked.hedge).toEqual({ delayMs: 80, maxAttempts: 2, mode: 'race' })
    expect(checked.retry).toEqual({ maxAttempts: 3, backoffMs: 100 })
    const tied = checkSubmitOptions(
      { hedge: { delayMs: 'auto', maxAttempts: MAX_COPIES, mode: 'tied' } },
      DEFAULTS,
    )
    expect(tied.hedge).toEqual({ delayMs: 'auto', maxAttempts: MAX_COPIES, mode: 'tied' })
  })

  it('refuses an unknown option or sub-option, naming it', () => {
    expect(refusal({ timeout: 5 })).toMatch(/^submit: unknown option 'timeout'/)
    expect(refusal({ hedge: { delay: 5 } })).toMatch(/^hedge: unknown option 'delay'/)
    expect(refusal({ retry: { attempts: 2 } })).toMatch(/^retry: unknown option 'attempts'/)
  })

  it('refuses hedges and retries beyond what helps: one copy to hedge, more than five copies', () => {
    expect(refusal({ hedge: { maxAttempts: 1 } })).toMatch(
      /^hedge\.maxAttempts must be an integer between 2 and 5/,
    )
    expect(refusal({ hedge: { maxAttempts: MAX_COPIES + 1 } })).toMatch(/^hedge\.maxAttempts/)
    expect(refusal({ retry: { maxAttempts: 0 } })).toMatch(
      /^retry\.maxAttempts must be an integer between 1 and 5/,
    )
    expect(refusal({ hedge: { delayMs: -1 } })).toMatch(/^hedge\.delayMs/)
    expect(refusal({ hedge: { mode: 'fast' } })).toMatch(/^hedge\.mode must be one of 'race', 'tied'/)
    expect(refusal({ retry: { backoffMs: 1.5 } })).toMatch(/^retry\.backoffMs/)
    expect(refusal({ hedge: true })).toBe('hedge must be an object (got true)')
    expect(refusal({ retry: null })).toBe('retry must be an object (got null)')
  })

  it('refuses values out of range, naming the option', () => {
    expect(refusal({ timeoutMs: 0 })).toMatch(/^timeoutMs must be an integer between 1 and/)
    expect(refusal({ maxAttempts: 101 })).toMatch(/^maxAttempts must be an integer between 1 and 100/)
    expect(refusal({ cost: 0 })).toMatch(/^cost must be an integer between 1 and/)
    expect(refusal({ cost: MAX_JOB_COST + 1 })).toMatch(/^cost/)
    expect(refusal({ onSaturated: 'queue' })).toMatch(/^onSaturated must be one of 'reject', 'wait'/)
    expect(refusal({ onRateLimited: 'drop' })).toMatch(/^onRateLimited must be one of 'wait', 'reject'/)
    expect(refusal({ onRedisUnavailable: 'retry' })).toBe(
      "onRedisUnavailable must be one of 'wait', 'reject' (got \"retry\")",
    )
    expect(refusal({ onRedisUnavailable: true })).toMatch(
      /^onRedisUnavailable must be one of 'wait', 'reject'/,
    )
    expect(refusal({ session: '' })).toMatch(/^session must be/)
    expect(refusal({ limitKey: 'a b' })).toMatch(/^limitKey must be/)
  })

  it("takes the dispatcher's onRedisUnavailable when the submit gives none", () => {
    expect(checkSubmitOptions({}, { ...DEFAULTS, onRedisUnavailable: 'reject' }).onRedisUnavailable).toBe(
      'reject',
    )
    expect(
      checkSubmitOptions({ onRedisUnavailable: 'wait' }, { ...DEFAULTS, onRedisUnavailable: 'reject' })
        .onRedisUnavailable,
    ).toBe('wait')
  })

  it('refuses a limitClass without the limitKey it applies to', () => {
    expect(refusal({ limitClass: 'pro' })).toBe('limitClass applies to a tenant: give limitKey too')
  })
})
