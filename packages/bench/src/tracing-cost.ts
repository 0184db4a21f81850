/**
 * What tracing costs. The library depends only on `@opentelemetry/api`: with no SDK registered,
 * each job makes two `activeTracer()` checks (one in the producer, one in the worker) and nothing
 * else. This measures that check in nanoseconds, then runs the same load three ways in one process
 * (producer and 2 workers, concurrency 50) against a redis-server of its own, interleaved, several
 * rounds: no SDK; an SDK that samples nothing (context still travels in each entry); an SDK that
 * records every span (a batch processor and an exporter that drops them). It prints medians of
 * jobs/s and of Node CPU per job.
 *
 *   node packages/bench/dist/tracing-cost.js [--quick]
 */

import { startRedisServer } from '@hedgeyard/redis-server'
import { context, trace } from '@opentelemetry/api'
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  type ReadableSpan,
  type SpanExporter,
} from '@opentelemetry/sdk-trace-base'
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node'
import { Dispatcher, startWorkers } from 'hedgeyard'
import { activeTracer } from 'hedgeyard/internal'
import { checkArgs } from './cli.js'
import { fmt, markdownTable, spread } from './stats.js'

checkArgs('tracing-cost.js', 'usage: node packages/bench/dist/tracing-cost.js [--quick]', {
  quick: { type: 'boolean' },
})
const isQuick = process.argv.includes('--quick')
const JOBS = isQuick ? 2_000 : 20_000
const ROUNDS = isQuick ? 1 : 5
const CONCURRENCY = 50

type Mode = 'no SDK' | 'SDK, nothing sampled' | 'SDK, every span recorded'
const MODES: Mode[] = ['no SDK', 'SDK, nothing sampled', 'SDK, every span recorded']

/** Drops what it is given: the cost measured is the library's and the SDK's, not an export's. */
const dropAll: SpanExporter = {
  export(_spans: ReadableSpan[], done) {
    done({ code: 0 })
  },
  shutdown: () => Promise.resolve(),
}

/** Nanoseconds per activeTracer() call with nothing registered. */
function checkCostNs(): number {
  const n = 2_000_000
  let found = 0
  for (let i = 0; i < 100_000; i++) if (activeTracer() !== undefined) found++
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) if (activeTracer() !== undefined) found++
  const ns = Number(process.hrtime.bigint() - t0) / n
  if (found > 0) throw new Error('a tracer was found with no SDK registered')
  return ns
}

/** Registers what `mode` needs; returns how to undo it. */
function register(mode: Mode): () => Promise<void> {
  if (mode === 'no SDK') return async () => {}
  const provider = new NodeTracerProvider({
    sampler: mode === 'SDK, nothing sampled' ? new AlwaysOffSampler() : new AlwaysOnSampler(),
    spanProcessors: [new BatchSpanProcessor(dropAll)],
  })
  provider.register()
  return async () => {
    trace.disable()
    context.disable()
    await provider.shutdown()
  }
}

/** Runs JOBS submits, CONCURRENCY at a time; returns jobs/s and Node CPU µs per job. */
async function load(d: Dispatcher): Promise<{ jobsPerSecond: number; cpuUsPerJob: number }> {
  let next = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < JOBS) {
        next++
        await d.submit({ n: next })
      }
    }),
  )
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  return { jobsPerSecond: JOBS / seconds, cpuUsPerJob: (cpu.user + cpu.system) / JOBS }
}

async function main(): Promise<void> {
  const ns = checkCostNs()
  const server = await startRedisServer()
  const results = new Map<Mode, { rate: number[]; cpu: number[] }>(
    MODES.map((m) => [m, { rate: [], cpu: [] }]),
  )
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const mode of MODES) {
        const undo = register(mode)
        const pool = `tracing-${round}-${mode.length}`
        const group = await startWorkers({
          redis: server.url,
          pool,
          count: 2,
          concurrency: 50,
          handler: () => 'ok',
        })
        const d = new Dispatcher({ redis: server.url, pool })
        await load(d) // warm-up: connections, scripts, JIT
        const r = await load(d)
        await d.close()
        await group.close()
        await undo()
        results.get(mode)?.rate.push(r.jobsPerSecond)
        results.get(mode)?.cpu.push(r.cpuUsPerJob)
        process.stderr.write(`round ${round + 1}/${ROUNDS} ${mode}: ${Math.round(r.jobsPerSecond)} jobs/s\n`)
      }
    }
  } finally {
    await server.stop()
  }
  const base = spread(results.get('no SDK')?.cpu ?? [])
  const rows = MODES.map((mode) => {
    const { rate, cpu } = results.get(mode) ?? { rate: [], cpu: [] }
    const c = spread(cpu)
    return [mode, fmt(spread(rate), 0), fmt(c, 1), `${((c.median / base.median - 1) * 100).toFixed(1)}%`]
  })
  process.stdout.write(
    `activeTracer() with no SDK: ${ns.toFixed(1)} ns per call, two calls per job\n` +
      `${JOBS} jobs per run, concurrency ${CONCURRENCY}, producer and 2 workers in one process, ${ROUNDS} rounds (median [min-max])\n\n` +
      `${markdownTable(['tracing', 'jobs/s', 'Node CPU µs per job', 'CPU vs no SDK'], rows)}\n`,
  )
}

await main()
