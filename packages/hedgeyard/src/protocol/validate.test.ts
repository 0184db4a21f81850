import { describe, expect, it } from 'vitest'
import { isHedgeyardError } from './errors.js'
import {
  checkInt,
  checkKnownOptions,
  checkLimitClass,
  checkLimitKey,
  checkMs,
  checkName,
  checkNumber,
  checkOneOf,
  checkSession,
  describe as describeValue,
  MAX_TIMER_MS,
} from './validate.js'

/** The message of the INVALID_ARGUMENT error `check` throws. */
function refusal(check: () => unknown): string {
  try {
    check()
  } catch (err) {
    if (isHedgeyardError(err, 'INVALID_ARGUMENT')) return err.message
    throw err
  }
  throw new Error('the check passed')
}

describe('checkName', () => {
  it('takes 1-100 letters, digits and _ . : -, as pool, prefix and worker names', () => {
    expect(checkName('pool', 'Chat_1.eu:a-b')).toBe('Chat_1.eu:a-b')
    expect(checkName('pool', 'x'.repeat(100))).toBe('x'.repeat(100))
  })

  it("refuses what would break a key (a hash tag's braces, spaces, separators), naming the field and the value", () => {
    expect(refusal(() => checkName('pool', 'a{b}'))).toBe(
      `pool must be 1-100 characters of letters, digits, '_', '.', ':' or '-' (got "a{b}")`,
    )
    for (const bad of ['', 'a b', 'a/b', 'é', 'x'.repeat(101), 7, undefined, null]) {
      expect(refusal(() => checkName('prefix', bad))).toMatch(/^prefix must be/)
    }
  })
})

describe('checkLimitKey and checkLimitClass', () => {
  it('take a tenant of up to 128 id characters, and a class without the : that separates it from the tenant', () => {
    expect(checkLimitKey('limitKey', 'org:42')).toBe('org:42')
    expect(checkLimitKey('limitKey', 'k'.repeat(128))).toBe('k'.repeat(128))
    expect(refusal(() => checkLimitKey('limitKey', 'k'.repeat(129)))).toMatch(/^limitKey must be 1-128/)
    expect(checkLimitClass('limitClass', 'free-tier.v2')).toBe('free-tier.v2')
    expect(refusal(() => checkLimitClass('limitClass', 'free:tier'))).toMatch(/^limitClass must be 1-64/)
    expect(refusal(() => checkLimitClass('limitClass', 'c'.repeat(65)))).toMatch(/^limitClass/)
  })
})

describe('checkSession', () => {
  it('takes free text of 1-256 characters without control characters or braces', () => {
    expect(checkSession('user 7 / chat «9»')).toBe('user 7 / chat «9»')
    expect(checkSession('s'.repeat(256))).toBe('s'.repeat(256))
    for (const bad of ['', 's'.repeat(257), 'a\nb', 'a\tb', 'a\u007fb', '{tag}', 42]) {
      expect(refusal(() => checkSession(bad))).toMatch(/^session must be a string of 1-256 characters/)
    }
  })
})

describe('checkInt and checkMs', () => {
  it('take an integer within the range, and say the range they allow', () => {
    expect(checkInt('count', 3, 1, 10)).toBe(3)
    expect(refusal(() => checkInt('count', 0, 1, 10))).toBe(
      'count must be an integer between 1 and 10 (got 0)',
    )
    expect(refusal(() => checkInt('count', 11, 1, 10))).toMatch(/\(got 11\)$/)
    expect(refusal(() => checkInt('resultTtlMs', 0, 1))).toBe('resultTtlMs must be an integer >= 1 (got 0)')
    for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY, '5', undefined]) {
      expect(refusal(() => checkInt('count', bad, 1))).toMatch(/^count must be an integer/)
    }
  })

  it('refuse a duration no Node.js timer can wait, saying why', () => {
    expect(checkMs('timeoutMs', MAX_TIMER_MS, 1)).toBe(MAX_TIMER_MS)
    expect(refusal(() => checkMs('timeoutMs', MAX_TIMER_MS + 1, 1))).toBe(
      `timeoutMs must be an integer between 1 and ${MAX_TIMER_MS} ms, the longest a Node.js timer waits (got ${MAX_TIMER_MS + 1})`,
    )
    expect(refusal(() => checkMs('blockMs', 5, 10, 1_000))).toBe(
      'blockMs must be an integer between 10 and 1000 ms (got 5)',
    )
  })
})

describe('checkOneOf, checkNumber and checkKnownOptions', () => {
  it('list what is allowed', () => {
    expect(checkOneOf('mode', 'tied', ['race', 'tied'])).toBe('tied')
    expect(refusal(() => checkOneOf('mode', 'fast', ['race', 'tied']))).toBe(
      `mode must be one of 'race', 'tied' (got "fast")`,
    )
    expect(checkNumber('budgetRatio', 0.25, 0, 1)).toBe(0.25)
    expect(refusal(() => checkNumber('budgetRatio', Number.NaN, 0, 1))).toMatch(/between 0 and 1 \(got NaN\)/)
    expect(refusal(() => checkNumber('budgetRatio', 2, 0, 1))).toMatch(/^budgetRatio must be a number/)
  })

  it('name an unknown option, so that a typo does not pass silently', () => {
    checkKnownOptions('submit', { timeoutMs: 1 }, ['timeoutMs', 'session'])
    expect(refusal(() => checkKnownOptions('submit', { timeout: 1 }, ['timeoutMs', 'session']))).toBe(
      "submit: unknown option 'timeout' (allowed: timeoutMs, session)",
    )
  })
})

describe('describe', () => {
  it('renders a bad value short and safe: strings quoted and cut at 40 characters, objects by type', () => {
    expect(describeValue('abc')).toBe('"abc"')
    expect(describeValue('x'.repeat(50))).toBe(`"${'x'.repeat(40)}..."`)
    expect(describeValue(12)).toBe('12')
    expect(describeValue(null)).toBe('null')
    expect(describeValue(undefined)).toBe('undefined')
    expect(describeValue({ password: 'secret' })).toBe('object')
    expect(describeValue(() => 1)).toBe('function')
  })
})
