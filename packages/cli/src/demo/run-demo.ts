import { randomBytes } from 'node:crypto'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, type RedisServer, startRedisServer } from '@hedgeyard/redis-server'
import { clearPoolLimits, inspectProducers, type PoolRef, setPoolLimits } from 'hedgeyard'
import { newTally, runChatSessions } from './chat-sessions.js'
import { ChildProcesses } from './child-processes.js'
import { Progress } from './progress.js'
import {
  CHUNK_WORDS,
  type DemoScenario,
  describeScenario,
  MODEL,
  poolBurst,
  REPLY_WORDS,
} from './scenario.js'
import { formatSummary, percentile, type WorkerRow } from './summary.js'

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '../main.js')

/** The order processes stop in: the gateways first (no new work), then the workers, then the model. */
const STOP_ORDER = ['gateway', 'worker', 'model']

function say(line: string): void {
  process.stdout.write(`${line}\n`)
}

const urlOf = (line: Record<string, unknown>) => (typeof line.url === 'string' ? line.url : undefined)
const workersOf = (line: Record<string, unknown>) =>
  line.msg === 'workers started' && Array.isArray(line.workerIds) ? (line.workerIds as string[]) : undefined

/**
 * Runs the seed's scenario end to end: Redis (its own when none is configured), the Gemini
 * simulator, worker processes with the Gemini handler, gateway processes, and chat sessions through
 * them with the official SDK; then the summary. Every process it started is stopped at the end, on
 * an error, and on Ctrl-C (a second one kills them at once).
 */
export async function runDemo(s: DemoScenario): Promise<void> {
  const children = new ChildProcesses(MAIN)
  const abort = new AbortController()
  let redis: RedisServer | undefined
  let redisStarting: Promise<RedisServer> | undefined
  let ref: PoolRef | undefined
  let limitsSetting: Promise<unknown> | undefined
  let progress: Progress | undefined
  let cleaning: Promise<void> | undefined
  // Whatever was under way when it began is waited for, so that nothing is left: a Redis still
  // starting, a quota still being written.
  const cleanup = () => {
    cleaning ??= (async () => {
      await children.stopAll(STOP_ORDER)
      const hasLimits = s.poolQuotaRps > 0 && (await limitsSetting?.then(() => true).catch(() => false))
      if (ref && hasLimits) await clearPoolLimits(ref).catch(() => {})
      await (await redisStarting?.catch(() => undefined))?.stop()
    })()
    return cleaning
  }
  const onSignal = (signal: NodeJS.Signals) => {
    if (abort.signal.aborted) {
      children.killAll()
      redis?.kill()
      process.exit(130)
    }
    abort.abort(new Error(`stopped by ${signal}`))
    progress?.stop(false)
    process.stderr.write(`${signal}: stopping the processes the demo started (again to kill them at once)\n`)
    void cleanup().finally(() => process.exit(130))
  }
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  for (const signal of signals) process.on(signal, onSignal)
  // The last resort, should the demo itself crash: nothing it started outlives it.
  const killLeft = () => {
    children.killAll()
    redis?.kill()
  }
  process.once('exit', killLeft)
  let failure: unknown
  try {
    for (const line of describeScenario(s)) say(line)
    say('')
    await play()
  } catch (err) {
    failure = err
  }
  // Interrupted: the signal handler cleans up and exits.
  if (abort.signal.aborted) return
  await cleanup()
  for (const signal of signals) process.off(signal, onSignal)
  process.off('exit', killLeft)
  if (failure !== undefined) throw failure

  async function play(): Promise<void> {
    const runId = randomBytes(4).toString('hex')
    // Keys made for this run: the one the gateways accept, and the workers' key at the model.
    const apiKey = `demo-${randomBytes(16).toString('hex')}`
    const modelKey = `model-${randomBytes(16).toString('hex')}`
    if (s.redis === undefined) {
      // Its own process group: a Ctrl-C on the terminal reaches the demo, which stops Redis last.
      redisStarting = startRedisServer({ isDetached: true, whenMissing: 'or set HEDGEYARD_REDIS_URL' })
      redis = await redisStarting
      say(`started redis-server at ${redis.url} (pid ${redis.pid})`)
    } else {
      say('using the configured Redis (--redis or HEDGEYARD_REDIS_URL)')
    }
    const redisUrl = s.redis ?? (redis as RedisServer).url
    ref = { redis: redisUrl, pool: s.pool, prefix: s.prefix }
    limitsSetting =
      s.poolQuotaRps > 0
        ? setPoolLimits(ref, { rate: { limit: s.poolQuotaRps, periodMs: 1_000, burst: poolBurst(s) } })
        : clearPoolLimits(ref)
    await limitsSetting
    // The simulator's port is chosen here, so that the workers start alongside it.
    const modelUrl = `http://127.0.0.1:${await freePort()}`
    const model = children.start(
      'model',
      [
        'fake-gemini',
        '--port',
        new URL(modelUrl).port,
        '--median-ms',
        String(s.medianMs),
        '--tokens-per-second',
        String(s.tokensPerSecond),
        '--reply-words',
        String(REPLY_WORDS),
        '--chunk-words',
        String(CHUNK_WORDS),
        '--quota-rps',
        String(s.modelQuotaRps),
      ],
      { HEDGEYARD_LOG_LEVEL: 'info' },
      urlOf,
    )
    const common = ['--redis', redisUrl, '--pool', s.pool, '--prefix', s.prefix]
    const workers = Array.from({ length: s.processes }, (_, i) =>
      children.start(
        `worker ${i + 1}`,
        [
          'worker',
          ...common,
          '--handler',
          '@hedgeyard/genai',
          '--count',
          String(s.count),
          '--concurrency',
          String(s.concurrency),
          '--id-prefix',
          `demo-p${i + 1}`,
        ],
        { HEDGEYARD_LOG_LEVEL: 'info', GENAI_BASE_URL: modelUrl, GEMINI_API_KEY: modelKey },
        workersOf,
      ),
    )
    const gateways = Array.from({ length: s.gateways }, (_, i) =>
      children.start(
        `gateway ${i + 1}`,
        ['gateway', ...common, '--port', '0'],
        { HEDGEYARD_LOG_LEVEL: 'info', HEDGEYARD_API_KEYS: `demo:${apiKey}` },
        urlOf,
      ),
    )
    // Awaited together, so that any one failing fails the start at once (and none goes unheard);
    // each group says so as soon as it is up.
    const [, , gatewayUrls] = await Promise.all([
      model.then(({ child }) =>
        say(`started the Gemini simulator at ${modelUrl} (pid ${child.process.pid})`),
      ),
      Promise.all(workers).then((started) =>
        say(
          `started ${s.processes} worker processes: ${started.map((w) => `${w.value.join(' ')} (pid ${w.child.process.pid})`).join(', ')}`,
        ),
      ),
      Promise.all(gateways).then((listening) => {
        say(
          `started ${s.gateways} gateways: ${listening.map((g) => `${g.value} (pid ${g.child.process.pid})`).join(', ')}`,
        )
        return listening.map((g) => g.value)
      }),
    ])
    say('')

    const tally = newTally()
    progress = new Progress(s.sessions * s.turns, () => ({
      done: tally.done,
      detail: `first token p50 ${percentile(tally.firstTokenMs, 0.5).toFixed(0)} ms  429s absorbed ${tally.retried.get(429) ?? 0}  failed ${tally.done - tally.answered}`,
    }))
    const startedAt = performance.now()
    progress.start()
    await runChatSessions(
      {
        gatewayUrls,
        apiKey,
        sessions: s.sessions,
        turns: s.turns,
        parallel: s.parallel,
        runId: `chat-${runId}`,
        model: MODEL,
        replyWords: REPLY_WORDS,
        signal: abort.signal,
      },
      tally,
    )
    const elapsedS = (performance.now() - startedAt) / 1000
    if (abort.signal.aborted) return
    progress.stop()

    const workerRows = (await getJson(`${gatewayUrls[0]}/workers`, apiKey)) as WorkerRow[]
    const modelStats = (await getJson(`${modelUrl}/_sim/stats`)) as {
      totals: { accepted: number; rateLimited: number }
    }
    // Closing, each gateway reports its dispatcher's counters to Redis; they are read from there.
    const gatewayChildren = children.named('gateway')
    await children.stop(gatewayChildren)
    const pids = new Set(gatewayChildren.map((c) => c.process.pid))
    const producers = (await inspectProducers(ref)).filter((p) => pids.has(pidOfProducer(p.producerId)))
    say('')
    say(
      formatSummary({
        scenario: s,
        elapsedS,
        tally,
        affinity: {
          hits: producers.reduce((n, p) => n + p.affinityHits, 0),
          misses: producers.reduce((n, p) => n + p.affinityMisses, 0),
        },
        model: modelStats.totals,
        workers: workerRows,
      }),
    )
    // A failed turn or a wrong reply is a broken demo: say so to a script too.
    if (tally.answered < tally.done || tally.wrongReplies > 0) process.exitCode = 1
  }
}

/** The process id in a producer id, `<host>-<pid>-<suffix>`. */
function pidOfProducer(producerId: string): number {
  return Number(producerId.split('-').at(-2))
}

async function getJson(url: string, apiKey?: string): Promise<unknown> {
  const res = await fetch(url, apiKey ? { headers: { 'x-goog-api-key': apiKey } } : {})
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}: ${await res.text()}`)
  return res.json()
}
