/** What `hedgeyard demo` runs: the seed's scenario by default. */
export interface DemoScenario {
  /** A Redis to use; left out, the demo starts its own redis-server. */
  redis?: string
  pool: string
  prefix: string
  /** Worker processes, each `hedgeyard worker --handler @hedgeyard/genai`. */
  processes: number
  /** Workers per process. */
  count: number
  /** Jobs one worker runs at once. */
  concurrency: number
  /** Gateway processes, `hedgeyard gateway`; each turn goes to the next one. */
  gateways: number
  /** Chat sessions; every other one streams (`generateContentStream`). */
  sessions: number
  turns: number
  /** Sessions talking at once. */
  parallel: number
  /** The simulated model's median time to the first token. */
  medianMs: number
  /** Words the simulated model streams per second after the first chunk. */
  tokensPerSecond: number
  /** The simulated model's quota, requests per second for the workers' API key; 0 is none. */
  modelQuotaRps: number
  /** The pool's quota (`setPoolLimits`), requests per second over every gateway; 0 is none. */
  poolQuotaRps: number
}

/**
 * The seed's scenario: 200 sessions of 5 turns through 2 gateways onto 3 worker processes, half of
 * them streaming, against a model that answers in tens of milliseconds and allows 75 requests per
 * second on its key, with the pool held to 50 per second: under the model's quota, and under what
 * 30 sessions at a time ask for, so that the gateways answer some requests 429.
 */
export const DEMO_DEFAULTS = Object.freeze({
  pool: 'demo',
  prefix: 'hy',
  processes: 3,
  count: 1,
  concurrency: 16,
  gateways: 2,
  sessions: 200,
  turns: 5,
  parallel: 30,
  medianMs: 40,
  tokensPerSecond: 300,
  modelQuotaRps: 75,
  poolQuotaRps: 50,
})

/** Words in each of the simulated model's replies, 4 to a streamed chunk. */
export const REPLY_WORDS = 24
/** Words in each streamed chunk of the simulated model. */
export const CHUNK_WORDS = 4
/** The model the sessions ask for. */
export const MODEL = 'gemini-2.5-flash'
/** Requests the pool quota lets through at once after a quiet spell. */
export function poolBurst(s: DemoScenario): number {
  return Math.max(1, Math.round(s.poolQuotaRps / 5))
}

const AT_LEAST_ONE = [
  'processes',
  'count',
  'concurrency',
  'gateways',
  'sessions',
  'turns',
  'parallel',
] as const

/** @throws Error naming the first option out of range. */
export function checkScenario(s: DemoScenario): DemoScenario {
  for (const name of AT_LEAST_ONE) {
    if (s[name] < 1) throw new Error(`--${kebab(name)} must be at least 1 (got ${s[name]})`)
  }
  return s
}

/** Sessions that stream: every other one, starting with the first. */
export function streamedSessions(s: DemoScenario): number {
  return Math.ceil(s.sessions / 2)
}

/** The scenario in a few lines: printed at the start of a run, and alone with `--dry-run`. */
export function describeScenario(s: DemoScenario): string[] {
  const streamed = streamedSessions(s)
  const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`
  return [
    `scenario    ${plural(s.sessions, 'chat session')} x ${plural(s.turns, 'turn')} = ${s.sessions * s.turns} requests with the @google/genai SDK, ${s.parallel} sessions at a time`,
    `            ${streamed} sessions streamed (generateContentStream), ${s.sessions - streamed} not (generateContent); each turn sends the conversation so far, through the next gateway`,
    `gateways    ${plural(s.gateways, 'process', 'processes')}: hedgeyard gateway, x-session-id per session`,
    `workers     ${plural(s.processes, 'process', 'processes')} x ${plural(s.count, 'worker')}: hedgeyard worker --handler @hedgeyard/genai, concurrency ${s.concurrency}, pool '${s.pool}'`,
    `model       simulated Gemini: first token after ${s.medianMs} ms (median), ${s.tokensPerSecond} words/s, ${REPLY_WORDS}-word replies; ${s.modelQuotaRps > 0 ? `${s.modelQuotaRps} requests/s per API key` : 'no quota'}`,
    `quota       ${s.poolQuotaRps > 0 ? `pool '${s.pool}': ${s.poolQuotaRps} requests/s (burst ${poolBurst(s)}) over every gateway; over it a gateway answers 429 with Retry-After, and the client retries after it` : 'none on the pool'}`,
  ]
}

function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
}
