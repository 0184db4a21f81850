import type { JobContext } from 'hedgeyard'

/** A request of the demo: one turn of a chat session. */
export interface ChatTurn {
  session: string
  turn: number
  prompt: string
}

/** What the simulated model answers. */
export interface ChatReply {
  workerId: string
  session: string
  turn: number
  text: string
  tokens: number
  modelMs: number
}

/** Standard normal sample (Box-Muller). */
function gaussian(): number {
  const u = 1 - Math.random()
  const v = Math.random()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

/**
 * Latency of a simulated model call: lognormal around `DEMO_MEDIAN_MS` (default 40 ms), and 2% of
 * calls 10-30x slower, the heavy tail that GenAI APIs show.
 */
export function modelLatencyMs(medianMs: number): number {
  const base = medianMs * Math.exp(0.5 * gaussian())
  return Math.random() < 0.02 ? base * (10 + Math.random() * 20) : base
}

/** The demo's worker handler: waits like a model call would, honouring the job's AbortSignal. */
export default async function chatHandler(req: ChatTurn, ctx: JobContext): Promise<ChatReply> {
  const modelMs = Math.round(modelLatencyMs(Number(process.env.DEMO_MEDIAN_MS ?? 40)))
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, modelMs)
    ctx.signal.addEventListener('abort', () => {
      clearTimeout(timer)
      reject(ctx.signal.reason)
    })
  })
  const tokens = 20 + Math.floor(Math.random() * 200)
  return {
    workerId: ctx.workerId,
    session: req.session,
    turn: req.turn,
    text: `(simulated answer to "${req.prompt.slice(0, 40)}")`,
    tokens,
    modelMs,
  }
}
