import { type ChildProcess, spawn } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { Dispatcher, inspectPool, isHedgeyardError } from 'hedgeyard'
import { type EmbeddedRedis, startEmbeddedRedis } from '../demo/embedded-redis.js'
import type { ChatReply, ChatTurn } from '../demo/handler.js'
import { Progress } from '../demo/progress.js'
import { intOption } from '../options.js'
import { table } from '../output.js'

interface DemoOptions {
  redis?: string
  pool: string
  prefix: string
  processes: number
  count: number
  concurrency: number
  sessions: number
  turns: number
  parallel: number
  medianMs: number
}

const here = dirname(fileURLToPath(import.meta.url))
const MAIN = join(here, '../main.js')
const HANDLER = join(here, '../demo/handler.js')

/** `hedgeyard demo`: a GenAI-like chat workload over real worker processes, with a summary. */
export function demoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run a chat-like workload on worker processes (starts its own redis-server when none is configured)',
    )
    .option(
      '--redis <url>',
      'use this Redis instead of starting one (env HEDGEYARD_REDIS_URL)',
      process.env.HEDGEYARD_REDIS_URL,
    )
    .option('--pool <name>', 'pool name', 'demo')
    .option('--prefix <prefix>', 'key prefix', 'hy')
    .option('--processes <n>', 'worker processes', intOption('--processes'), 3)
    .option('--count <n>', 'workers per process', intOption('--count'), 2)
    .option('--concurrency <n>', 'jobs one worker runs at once', intOption('--concurrency'), 4)
    .option('--sessions <n>', 'chat sessions', intOption('--sessions'), 200)
    .option('--turns <n>', 'turns per session', intOption('--turns'), 5)
    .option('--parallel <n>', 'sessions talking at once', intOption('--parallel'), 40)
    .option('--median-ms <ms>', 'median latency of the simulated model', intOption('--median-ms'), 40)
    .action(async (opts: DemoOptions) => runDemo(opts))
}

async function runDemo(opts: DemoOptions): Promise<void> {
  for (const name of ['processes', 'count', 'concurrency', 'sessions', 'turns', 'parallel'] as const) {
    if (opts[name] < 1) throw new Error(`--${name} must be at least 1 (got ${opts[name]})`)
  }
  let embedded: EmbeddedRedis | undefined
  const workers: ChildProcess[] = []
  let dispatcher: Dispatcher<ChatTurn, ChatReply> | undefined
  const cleanup = async () => {
    await dispatcher?.close()
    await Promise.all(workers.map(stopProcess))
    await embedded?.stop()
  }
  const onSignal = () => {
    void cleanup().then(() => process.exit(130))
  }
  process.once('SIGINT', onSignal)
  try {
    let url = opts.redis
    if (!url) {
      embedded = await startEmbeddedRedis()
      url = embedded.url
      say(`started redis-server at ${url}`)
    }
    const pool = opts.pool
    for (let i = 0; i < opts.processes; i++) {
      workers.push(
        spawn(
          process.execPath,
          [
            MAIN,
            'worker',
            '--redis',
            url,
            '--pool',
            pool,
            '--prefix',
            opts.prefix,
            '--handler',
            HANDLER,
            '--count',
            String(opts.count),
            '--concurrency',
            String(opts.concurrency),
            '--id-prefix',
            `demo-p${i + 1}`,
          ],
          {
            stdio: ['ignore', 'ignore', 'inherit'],
            env: { ...process.env, HEDGEYARD_LOG_LEVEL: 'warn', DEMO_MEDIAN_MS: String(opts.medianMs) },
          },
        ),
      )
    }
    const expected = opts.processes * opts.count
    await waitFor(
      async () =>
        (await inspectPool({ redis: url, pool, prefix: opts.prefix })).filter((w) => w.alive).length >=
        expected,
      20_000,
      `${expected} workers to register`,
    )
    say(
      `${opts.processes} worker processes with ${opts.count} workers each (concurrency ${opts.concurrency}) are up in pool '${pool}'`,
    )

    dispatcher = new Dispatcher<ChatTurn, ChatReply>({ redis: url, pool, prefix: opts.prefix })
    const d = dispatcher
    const total = opts.sessions * opts.turns
    const latencies: number[] = []
    const workerOfSession = new Map<string, Set<string>>()
    const failures = new Map<string, number>()
    let done = 0
    const progress = new Progress(total, () => ({
      done,
      failed: sum(failures),
      p50Ms: percentile(latencies, 0.5),
    }))
    const startedAt = performance.now()
    progress.start()
    let nextSession = 0
    const talk = async () => {
      while (nextSession < opts.sessions) {
        const session = `chat-${++nextSession}`
        for (let turn = 1; turn <= opts.turns; turn++) {
          const t0 = performance.now()
          try {
            const reply = await d.submit(
              { session, turn, prompt: `turn ${turn} of ${session}: tell me more` },
              { session, timeoutMs: 30_000, onSaturated: 'wait' },
            )
            latencies.push(performance.now() - t0)
            const seen = workerOfSession.get(session) ?? new Set<string>()
            seen.add(reply.workerId)
            workerOfSession.set(session, seen)
          } catch (err) {
            const code = isHedgeyardError(err) ? err.code : 'ERROR'
            failures.set(code, (failures.get(code) ?? 0) + 1)
          }
          done++
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(opts.parallel, opts.sessions) }, talk))
    const elapsedS = (performance.now() - startedAt) / 1000
    progress.stop()

    const metrics = await d.workerMetrics()
    const stats = d.stats()
    const stayed = [...workerOfSession.values()].filter((s) => s.size === 1).length
    const affinityTotal = stats.affinityHits + stats.affinityMisses
    say('')
    say(
      `requests    ${total} (${latencies.length} ok, ${sum(failures)} failed${failures.size ? `: ${[...failures].map(([c, n]) => `${c} ${n}`).join(', ')}` : ''})`,
    )
    say(`throughput  ${(latencies.length / elapsedS).toFixed(0)} req/s over ${elapsedS.toFixed(1)} s`)
    say(
      `latency     p50 ${percentile(latencies, 0.5).toFixed(1)} ms   p95 ${percentile(latencies, 0.95).toFixed(1)} ms   p99 ${percentile(latencies, 0.99).toFixed(1)} ms   max ${percentile(latencies, 1).toFixed(1)} ms`,
    )
    say(
      `affinity    ${affinityTotal ? ((100 * stats.affinityHits) / affinityTotal).toFixed(1) : '0'}% hits (${stats.affinityHits}/${affinityTotal}); ${stayed}/${workerOfSession.size} sessions stayed on one worker`,
    )
    say('')
    say(
      table(
        ['worker', 'pid', 'processed', 'errors', 'inflight', 'queued'],
        metrics.map((m) => [m.workerId, m.pid, m.processed, m.errors, m.inflight, m.queueLen]),
      ),
    )
  } finally {
    process.off('SIGINT', onSignal)
    await cleanup()
  }
}

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

function sum(map: Map<string, number>): number {
  let n = 0
  for (const v of map.values()) n += v
  return n
}

function percentile(values: number[], q: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 15_000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill('SIGTERM')
  })
}
