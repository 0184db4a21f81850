import { table } from '../output.js'
import type { ChatTally } from './chat-sessions.js'
import type { DemoScenario } from './scenario.js'

/** A worker as a gateway's `GET /workers` lists it (the seed's fields, then Hedgeyard's). */
export interface WorkerRow {
  worker_id: string
  pid: number
  processed: number
  errors: number
  inflight: number
  queue_len: number
}

/** What a run produced, for its summary. */
export interface DemoOutcome {
  scenario: DemoScenario
  elapsedS: number
  tally: ChatTally
  /** The gateways' dispatch counters, as they reported them to Redis when they closed. */
  affinity: { hits: number; misses: number }
  /** What the simulated model answered: 200s, and 429s over its quota. */
  model: { accepted: number; rateLimited: number }
  workers: WorkerRow[]
}

/** The q-quantile of `values` (nearest rank), 0 for none. */
export function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? 0
}

function sum(map: Map<unknown, number>): number {
  let n = 0
  for (const v of map.values()) n += v
  return n
}

function ms(value: number): string {
  return `${value.toFixed(1)} ms`
}

/** The summary a run ends with: one line per claim, then the per-worker table. */
export function formatSummary(o: DemoOutcome): string {
  const { scenario: s, tally: t } = o
  const total = s.sessions * s.turns
  const failed = sum(t.failures)
  const failures = [...t.failures].map(([what, n]) => `${what} ${n}`).join(', ')
  const absorbed = t.retried.get(429) ?? 0
  const others = [...t.retried].filter(([status]) => status !== 429)
  const quota = s.poolQuotaRps > 0 ? `the pool's quota of ${s.poolQuotaRps} requests/s` : 'no pool quota'
  const dispatched = o.affinity.hits + o.affinity.misses
  // A session's first request binds it (a miss); any other miss moved a session to another worker.
  const moved = Math.max(0, o.affinity.misses - s.sessions)
  const affinityClaim =
    dispatched === 0
      ? 'the gateways reported no counters'
      : moved === 0
        ? "each session's later turns went to the worker of its first, through either gateway"
        : `${moved} requests went to another worker than the one their session was bound to`
  const lines = [
    `requests    ${total} (${t.answered} ok, ${failed} failed${failed ? `: ${failures}` : ''}) in ${o.elapsedS.toFixed(1)} s, ${(t.answered / o.elapsedS).toFixed(0)} req/s; ${t.streamed} streamed, ${t.answered - t.streamed} not`,
    `first token p50 ${ms(percentile(t.firstTokenMs, 0.5))}   p99 ${ms(percentile(t.firstTokenMs, 0.99))}   (streamed: the first chunk, p50 ${ms(percentile(t.streamedFirstTokenMs, 0.5))}; not streamed: the whole reply)`,
    `last token  p50 ${ms(percentile(t.lastTokenMs, 0.5))}   p99 ${ms(percentile(t.lastTokenMs, 0.99))}`,
    `429s        ${absorbed} absorbed: the gateways answered 429 with Retry-After (${quota}), the client sent each again after it; the model answered ${o.model.accepted} calls and refused ${o.model.rateLimited} with 429${others.length ? `; also retried: ${others.map(([status, n]) => `${n} answers ${status}`).join(', ')}` : ''}`,
    `affinity    ${dispatched ? ((100 * o.affinity.hits) / dispatched).toFixed(1) : '0.0'}% hits (${o.affinity.hits}/${dispatched}, the gateways' counters): ${affinityClaim}`,
    `replies     ${t.answered - t.wrongReplies}/${t.answered} are the model's answer to the whole conversation sent`,
    ...(t.firstFailure === undefined ? [] : [`first failure: ${t.firstFailure}`]),
    '',
    table(
      ['worker', 'pid', 'processed', 'errors', 'inflight', 'queued'],
      o.workers.map((w) => [w.worker_id, w.pid, w.processed, w.errors, w.inflight, w.queue_len]),
    ),
  ]
  return lines.join('\n')
}
