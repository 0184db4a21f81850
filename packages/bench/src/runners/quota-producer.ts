/**
 * A producer process of the limits benchmark: sends `count` Gemini requests at `rate` per second
 * (open loop), retried up to `retries` copies, and prints one JSON line: how many succeeded, the
 * error codes of the others, and its dispatcher's counters. test/upstream.test.ts runs it too.
 *   node quota-producer.js <redisUrl> <pool> <name> <count> <rate> <retries>
 */
import { Dispatcher } from 'hedgeyard'

const [url, pool, name, countArg, rateArg, retriesArg] = process.argv.slice(2)
const count = Number(countArg)
const rate = Number(rateArg)
const retries = Number(retriesArg ?? 1)
const d = new Dispatcher({ redis: url as string, pool: pool as string, timeoutMs: 60_000 })
const outcome = { ok: 0, errors: {} as Record<string, number> }
const started = Date.now()
const pending: Promise<void>[] = []
for (let i = 0; i < count; i++) {
  const wait = started + (i * 1_000) / rate - Date.now()
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  pending.push(
    d
      .submit(
        { contents: [{ role: 'user', parts: [{ text: `${name} question ${i}` }] }] },
        retries > 1 ? { retry: { maxAttempts: retries, backoffMs: 0 } } : {},
      )
      .then(
        () => {
          outcome.ok++
        },
        (err: { code?: string }) => {
          const code = err.code ?? 'error'
          outcome.errors[code] = (outcome.errors[code] ?? 0) + 1
        },
      ),
  )
}
await Promise.all(pending)
process.stdout.write(`${JSON.stringify({ name, ...outcome, stats: d.stats() })}\n`)
await d.close()
