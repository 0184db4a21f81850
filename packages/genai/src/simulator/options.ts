/** How the simulated model behaves; every field can be changed while the simulator runs. */
export interface FakeGeminiBehaviour {
  /** Median time to the first token, in ms: latencies are lognormal around it. @defaultValue 300 */
  medianMs: number
  /** Sigma of the latency's logarithm; 0 gives `medianMs` every time. @defaultValue 0.5 */
  sigma: number
  /** Share of requests (0-1) that stall for `stallMs` more before their first token. @defaultValue 0 */
  stallRate: number
  /** How long a stall lasts, in ms. @defaultValue 10000 */
  stallMs: number
  /** Tokens (words) generated per second after the first chunk; 0 sends them all at once. @defaultValue 50 */
  tokensPerSecond: number
  /** Words per streamed chunk. @defaultValue 4 */
  chunkWords: number
  /** Words in a reply, unless the request's `maxOutputTokens` is lower. @defaultValue 24 */
  replyWords: number
  /** Requests accepted per API key in any 1-second window; 0 is no quota. @defaultValue 0 */
  quotaRps: number
  /** Share of requests (0-1) answered 503 at random. @defaultValue 0 */
  errorRate: number
}

/** Options of `startFakeGemini`: where to listen, and the initial behaviour. */
export interface FakeGeminiOptions extends Partial<FakeGeminiBehaviour> {
  /** 0 picks a free port. @defaultValue 0 */
  port?: number
  /** @defaultValue '127.0.0.1' */
  host?: string
}

/** The simulator's defaults: a model that answers 24 words after about 300 ms, at 50 words/s. */
export const FAKE_GEMINI_DEFAULTS: Readonly<FakeGeminiBehaviour & { port: number; host: string }> =
  Object.freeze({
    port: 0,
    host: '127.0.0.1',
    medianMs: 300,
    sigma: 0.5,
    stallRate: 0,
    stallMs: 10_000,
    tokensPerSecond: 50,
    chunkWords: 4,
    replyWords: 24,
    quotaRps: 0,
    errorRate: 0,
  })

const MAX_MS = 2_147_483_647

/** The check of each behaviour field: its limits, and whether it must be an integer. */
const LIMITS: Record<keyof FakeGeminiBehaviour, { min: number; max: number; isInteger: boolean }> = {
  medianMs: { min: 0, max: MAX_MS, isInteger: false },
  sigma: { min: 0, max: 10, isInteger: false },
  stallRate: { min: 0, max: 1, isInteger: false },
  stallMs: { min: 0, max: MAX_MS, isInteger: false },
  tokensPerSecond: { min: 0, max: 1e9, isInteger: false },
  chunkWords: { min: 1, max: 100_000, isInteger: true },
  replyWords: { min: 1, max: 100_000, isInteger: true },
  quotaRps: { min: 0, max: 1e9, isInteger: true },
  errorRate: { min: 0, max: 1, isInteger: false },
}

/** The behaviour part of {@link FAKE_GEMINI_DEFAULTS}, as a fresh object. */
export function defaultBehaviour(): FakeGeminiBehaviour {
  const behaviour = {} as FakeGeminiBehaviour
  for (const field of Object.keys(LIMITS) as (keyof FakeGeminiBehaviour)[]) {
    behaviour[field] = FAKE_GEMINI_DEFAULTS[field]
  }
  return behaviour
}

/**
 * Applies `changes` to `base`, checking every field once.
 * @throws RangeError naming the field and its limits, or listing the known fields for an unknown one.
 */
export function mergeBehaviour(base: FakeGeminiBehaviour, changes: object): FakeGeminiBehaviour {
  const merged: FakeGeminiBehaviour = { ...base }
  for (const [name, value] of Object.entries(changes)) {
    if (value === undefined) continue
    if (!Object.hasOwn(LIMITS, name)) {
      throw new RangeError(`unknown setting '${name}' (known: ${Object.keys(LIMITS).join(', ')})`)
    }
    const field = name as keyof FakeGeminiBehaviour
    const { min, max, isInteger } = LIMITS[field]
    const isValid =
      typeof value === 'number' &&
      Number.isFinite(value) &&
      value >= min &&
      value <= max &&
      (!isInteger || Number.isInteger(value))
    if (!isValid) {
      const kind = isInteger ? 'an integer' : 'a number'
      throw new RangeError(`${field} must be ${kind} from ${min} to ${max} (got ${JSON.stringify(value)})`)
    }
    merged[field] = value
  }
  return merged
}
