import { setMaxListeners } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { ApiError, type Content, type Fetch, GoogleGenAI } from '@google/genai'
import { fakeGeminiText } from '@hedgeyard/genai'

/** Where the sessions talk, and how many. */
export interface ChatSessionsOptions {
  gatewayUrls: string[]
  /** The key the gateways accept. */
  apiKey: string
  sessions: number
  turns: number
  /** Sessions talking at once; they start over the first second, as users arrive. */
  parallel: number
  /** Prefix of this run's session ids, so that no binding left by an earlier run is found. */
  runId: string
  model: string
  /** Words of each of the simulated model's replies: what a reply is checked against. */
  replyWords: number
  /** Aborts every call under way: Ctrl-C. */
  signal: AbortSignal
}

/** What the sessions saw, updated as they go (the progress line reads it). */
export interface ChatTally {
  /** Turns finished, answered or failed. */
  done: number
  answered: number
  streamed: number
  /** Failed turns by what failed them (`HTTP 500`, `TypeError`, ...). */
  failures: Map<string, number>
  /** The message of the first failure, to say what went wrong. */
  firstFailure?: string
  /** Per answered turn, ms from its call to the first chunk (a whole reply when not streamed). */
  firstTokenMs: number[]
  /** The same, of the streamed turns alone. */
  streamedFirstTokenMs: number[]
  /** Per answered turn, ms from its call to the end of the reply. */
  lastTokenMs: number[]
  /** Answers the client waited out (after their Retry-After) and sent again, by HTTP status. */
  retried: Map<number, number>
  /** Replies that were not the model's answer to the conversation sent. */
  wrongReplies: number
}

/** HTTP answers that say "later": over a quota or a full pool (429), no worker for now or a throttle (503). */
const RETRIED_STATUSES = new Set([429, 503])
/** Calls of one turn at most, the first included. */
const MAX_ATTEMPTS = 20
/** Over how long the sessions of the first wave start. */
const RAMP_MS = 1_000

/** An empty tally. */
export function newTally(): ChatTally {
  return {
    done: 0,
    answered: 0,
    streamed: 0,
    failures: new Map(),
    firstTokenMs: [],
    streamedFirstTokenMs: [],
    lastTokenMs: [],
    retried: new Map(),
    wrongReplies: 0,
  }
}

/**
 * Plays the chat sessions through the gateways with the official SDK: each turn sends the
 * conversation so far as `contents`, with the session's `x-session-id`, through the next gateway;
 * every other session streams (`generateContentStream`), the first included; the others do not
 * (`generateContent`).
 * An answer 429 or 503 is retried after its Retry-After.
 */
export async function runChatSessions(options: ChatSessionsOptions, tally: ChatTally): Promise<void> {
  const clients = options.gatewayUrls.map(
    (baseUrl) => new GoogleGenAI({ apiKey: options.apiKey, httpOptions: { baseUrl } }),
  )
  const parallel = Math.min(options.parallel, options.sessions)
  // Each session waits on the signal, through a call or a pause: one listener each, none left.
  setMaxListeners(parallel + 10, options.signal)
  let next = 0
  const talk = async (slot: number) => {
    await sleep((slot * RAMP_MS) / parallel, undefined, { signal: options.signal })
    while (next < options.sessions && !options.signal.aborted) {
      const index = next++
      await runSession(clients, index, options, tally)
    }
  }
  await Promise.all(Array.from({ length: parallel }, (_, slot) => talk(slot)))
}

async function runSession(
  clients: GoogleGenAI[],
  index: number,
  options: ChatSessionsOptions,
  tally: ChatTally,
): Promise<void> {
  const session = `${options.runId}-${index + 1}`
  const isStreamed = index % 2 === 0
  const history: Content[] = []
  for (let turn = 0; turn < options.turns && !options.signal.aborted; turn++) {
    const ai = clients[(index + turn) % clients.length] as GoogleGenAI
    const contents: Content[] = [
      ...history,
      { role: 'user', parts: [{ text: `Session ${index + 1}, turn ${turn + 1}: tell me more.` }] },
    ]
    try {
      const reply = await callWithRetries(ai, contents, session, isStreamed, options, tally)
      tally.answered++
      if (isStreamed) {
        tally.streamed++
        tally.streamedFirstTokenMs.push(reply.firstMs)
      }
      tally.firstTokenMs.push(reply.firstMs)
      tally.lastTokenMs.push(reply.lastMs)
      if (reply.text !== fakeGeminiText(promptOf(contents), options.replyWords)) tally.wrongReplies++
      history.push(...contents.slice(history.length), { role: 'model', parts: [{ text: reply.text }] })
    } catch (err) {
      if (options.signal.aborted) return
      const what = err instanceof ApiError ? `HTTP ${err.status}` : err instanceof Error ? err.name : 'Error'
      tally.failures.set(what, (tally.failures.get(what) ?? 0) + 1)
      tally.firstFailure ??= err instanceof Error ? err.message : String(err)
    }
    tally.done++
  }
}

/** The text the simulated model answers: every text part of the conversation, one per line. */
function promptOf(contents: Content[]): string {
  return contents.flatMap((c) => (c.parts ?? []).map((p) => p.text ?? '')).join('\n')
}

async function callWithRetries(
  ai: GoogleGenAI,
  contents: Content[],
  session: string,
  isStreamed: boolean,
  options: ChatSessionsOptions,
  tally: ChatTally,
): Promise<{ text: string; firstMs: number; lastMs: number }> {
  for (let attempt = 1; ; attempt++) {
    // The SDK's errors carry the status, not the headers: this keeps the Retry-After.
    let retryAfter: string | null = null
    const keepRetryAfter: Fetch = async (input, init) => {
      const res = await fetch(input, init)
      if (!res.ok) retryAfter = res.headers.get('retry-after')
      return res
    }
    // A signal per call: the SDK leaves a listener on the one it is given.
    const call = new AbortController()
    const abortCall = () => call.abort(options.signal.reason)
    options.signal.addEventListener('abort', abortCall, { once: true })
    const config = {
      abortSignal: call.signal,
      httpOptions: { headers: { 'x-session-id': session }, fetch: keepRetryAfter },
    }
    const startedAt = performance.now()
    let firstMs: number | undefined
    try {
      if (!isStreamed) {
        const res = await ai.models.generateContent({ model: options.model, contents, config })
        const ms = performance.now() - startedAt
        return { text: res.text ?? '', firstMs: ms, lastMs: ms }
      }
      let text = ''
      for await (const chunk of await ai.models.generateContentStream({
        model: options.model,
        contents,
        config,
      })) {
        firstMs ??= performance.now() - startedAt
        text += chunk.text ?? ''
      }
      const lastMs = performance.now() - startedAt
      return { text, firstMs: firstMs ?? lastMs, lastMs }
    } catch (err) {
      const isRetried =
        err instanceof ApiError &&
        RETRIED_STATUSES.has(err.status) &&
        firstMs === undefined &&
        attempt < MAX_ATTEMPTS
      if (!isRetried) throw err
      tally.retried.set(err.status, (tally.retried.get(err.status) ?? 0) + 1)
    } finally {
      options.signal.removeEventListener('abort', abortCall)
    }
    await sleep(retryAfterMs(retryAfter), undefined, { signal: options.signal })
  }
}

/** A Retry-After header in ms: seconds, or an HTTP date; 1 s when there is none. */
function retryAfterMs(header: string | null): number {
  if (header === null || header.trim() === '') return 1_000
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1_000)
  const at = Date.parse(header)
  return Number.isNaN(at) ? 1_000 : Math.max(0, at - Date.now())
}
