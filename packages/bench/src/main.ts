/**
 * The benchmark suites of Hedgeyard, side by side with BullMQ and the Redis limit (for latency,
 * also a plain-commands baseline, and floors that do less than a dispatcher does), in one run:
 *
 *   node packages/bench/dist/main.js [--quick] [--suites a,b,...] [--reps <n>] [--no-write]
 *                                    [--profile <dir>] [--docs-dir <dir>]
 *
 * (`npm run bench` at the root.) Starts its own redis-server, runs the suites (throughput,
 * closed-loop, open-loop, routing, redis-limit, dispatch-cost, streaming), prints a table, and,
 * unless `--quick` or `--no-write`, rewrites docs/benchmarks.md with docs/bench/results.json and
 * the SVG charts (a run of some suites keeps the other suites' results of the run before it
 * there, and says so). `--quick` is the smoke test of `npm test`: every suite with tiny sizes,
 * failing only on errors, never on a timing. `--profile <dir>` writes a V8 CPU profile of every producer and
 * worker process into `dir` (and writes no doc: profiling slows them down). `--docs-dir` writes
 * the doc, JSON and charts there instead of the repository's docs/ (even with `--quick`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { probeHealth } from './health-probe.js'
import { loadLibraryScripts } from './library-scripts.js'
import { machineInfo } from './machine-info.js'
import type { BenchContext } from './measure-run.js'
import { startRedisServer } from './redis-server.js'
import { renderCharts } from './report-charts.js'
import { renderDoc } from './report-doc.js'
import { consoleSummary } from './report-tables.js'
import { type BenchResults, carryOver, SUITE_NAMES, type SuiteName } from './results.js'
import { profileRunnersInto } from './runner-process.js'
import { runDispatchCost } from './suite-dispatch-cost.js'
import { runClosedLoop, runOpenLoop } from './suite-latency.js'
import { runRedisLimit } from './suite-redis-limit.js'
import { runRouting } from './suite-routing.js'
import { runStreaming } from './suite-streaming.js'
import { runThroughput } from './suite-throughput.js'
import { checkTargets } from './targets.js'

const RUN_DEFAULTS = Object.freeze({ repetitions: 3, quietWaitMs: 5_000, attempts: 2, maxRetries: 8 })

/** The repository root, from dist/main.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url))

const USAGE = `usage: npm run bench -- [options]   (or node packages/bench/dist/main.js [options])

  --suites a,b,...   suites to run (default: all): ${SUITE_NAMES.join(', ')}
                     (writing, the other suites' results of the previous run are kept)
  --reps <n>         repetitions of each measurement (default ${RUN_DEFAULTS.repetitions}; 1 with --quick)
  --quick            smoke test: every suite with tiny sizes; writes no doc unless --docs-dir
  --no-write         print the results only; leave docs/benchmarks.md as it is
  --profile <dir>    write a V8 CPU profile of every producer and worker process into <dir>
  --docs-dir <dir>   write the doc, JSON and charts into <dir> instead of docs/
  --help             print this and exit`

function parse() {
  const { values } = parseArgs({
    options: {
      help: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      suites: { type: 'string' },
      reps: { type: 'string' },
      'no-write': { type: 'boolean', default: false },
      profile: { type: 'string' },
      'docs-dir': { type: 'string' },
    },
  })
  if (values.help) return undefined
  const suites = (values.suites?.split(',').map((s) => s.trim()) ?? [...SUITE_NAMES]) as SuiteName[]
  const unknown = suites.filter((s) => !SUITE_NAMES.includes(s))
  if (unknown.length > 0)
    throw new Error(`unknown suite(s) ${unknown.join(', ')}: pick from ${SUITE_NAMES.join(', ')}`)
  const repetitions =
    values.reps === undefined ? (values.quick ? 1 : RUN_DEFAULTS.repetitions) : Number(values.reps)
  if (!Number.isInteger(repetitions) || repetitions < 1)
    throw new Error(`--reps must be a positive integer (got ${values.reps})`)
  const docsDir = values['docs-dir']
  const isWriting =
    docsDir !== undefined || (!values.quick && !values['no-write'] && values.profile === undefined)
  return {
    isQuick: values.quick,
    suites,
    repetitions,
    isWriting,
    docsDir: docsDir ?? join(ROOT, 'docs'),
    profileDir: values.profile,
  }
}

async function main(): Promise<number> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse()
  } catch (err) {
    // A bad command line: say what is wrong and how to call it, without a stack trace.
    console.error(`${err instanceof Error ? err.message : String(err)}\n\n${USAGE}`)
    return 2
  }
  if (parsed === undefined) {
    console.log(USAGE)
    return 0
  }
  const args = parsed
  if (args.profileDir !== undefined) profileRunnersInto(args.profileDir)
  const started = Date.now()
  const scripts = await loadLibraryScripts()
  const server = await startRedisServer()
  const onSignal = () => void server.stop().finally(() => process.exit(130))
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  const conn = new Redis(server.url, { connectionName: 'hy:bench:main' })
  conn.on('error', () => {})
  const machine = machineInfo(server.version)
  const probe = await probeHealth(conn)
  console.log(
    `Hedgeyard benchmarks${args.isQuick ? ' (quick smoke mode)' : ''}: ${machine.cpus} CPUs (${machine.cpuModel}; ` +
      `${machine.cpuDetails}), Node ${machine.node}, Redis ${machine.redis}, BullMQ ${machine.bullmq}, ` +
      `ioredis ${machine.ioredis}, hedgeyard ${machine.hedgeyard} at ${machine.commit}, dispatch script ` +
      `${scripts.dispatch.sha1.slice(0, 12)}`,
  )
  console.log(
    `suites: ${args.suites.join(', ')}; ${args.repetitions} repetition(s); probe: cpu loop ${probe.cpuLoopMs} ms, ` +
      `ping ${probe.pingUs} us`,
  )
  const ctx: BenchContext = {
    redisUrl: server.url,
    conn,
    isQuick: args.isQuick,
    quietWaitMs: args.isQuick ? 0 : RUN_DEFAULTS.quietWaitMs,
    attempts: args.isQuick ? 1 : RUN_DEFAULTS.attempts,
    retries: { used: 0, max: RUN_DEFAULTS.maxRetries },
    log: (line) => console.log(line),
  }
  const results: BenchResults = {
    startedAt: new Date(started).toISOString(),
    durationSeconds: 0,
    command:
      process.argv.length > 2 ? `npm run bench -- ${process.argv.slice(2).join(' ')}` : 'npm run bench',
    isQuick: args.isQuick,
    repetitions: args.repetitions,
    machine,
    dispatchScriptSha1: scripts.dispatch.sha1,
    suites: args.suites,
    retries: ctx.retries,
    targets: [],
    errors: [],
  }
  const reps = args.repetitions
  const suites: Record<SuiteName, () => Promise<void>> = {
    throughput: async () => {
      results.throughput = await runThroughput(ctx, reps)
    },
    'closed-loop': async () => {
      results.closedLoop = await runClosedLoop(ctx, reps)
    },
    'open-loop': async () => {
      results.openLoop = await runOpenLoop(ctx, reps)
    },
    routing: async () => {
      results.routing = await runRouting(ctx, reps)
    },
    'redis-limit': async () => {
      results.redisLimit = await runRedisLimit(ctx, reps, server.port)
    },
    'dispatch-cost': async () => {
      results.dispatchCost = await runDispatchCost(ctx, reps)
    },
    streaming: async () => {
      results.streaming = await runStreaming(ctx, reps)
    },
  }
  try {
    for (const name of SUITE_NAMES.filter((s) => args.suites.includes(s))) {
      const t0 = Date.now()
      console.log(`\n== ${name}`)
      try {
        await suites[name]()
        console.log(`== ${name}: ${((Date.now() - t0) / 1_000).toFixed(0)} s`)
      } catch (err) {
        console.error(`!! ${name} failed:`, err)
        results.errors.push({ suite: name, message: err instanceof Error ? err.message : String(err) })
      }
    }
  } finally {
    conn.disconnect()
    await server.stop()
  }
  results.durationSeconds = Math.round((Date.now() - started) / 1_000)
  results.targets = checkTargets(results)
  console.log(`\n${consoleSummary(results)}`)
  console.log(`\ntotal time ${results.durationSeconds} s`)

  if (args.isWriting) {
    const jsonPath = join(args.docsDir, 'bench', 'results.json')
    // The charts of this run's suites only: those of results kept from an earlier run stay as they are.
    const charts = renderCharts(results)
    if (args.suites.length < SUITE_NAMES.length) {
      try {
        carryOver(results, JSON.parse(readFileSync(jsonPath, 'utf8')) as BenchResults)
        results.targets = checkTargets(results)
      } catch {
        // no previous results: the doc shows this run's suites only
      }
    }
    const docs = args.docsDir
    mkdirSync(join(docs, 'bench'), { recursive: true })
    writeFileSync(jsonPath, `${JSON.stringify(results, null, 1)}\n`)
    for (const [file, svg] of Object.entries(charts)) writeFileSync(join(docs, 'bench', file), svg)
    const docPath = join(docs, 'benchmarks.md')
    let previous = ''
    try {
      previous = readFileSync(docPath, 'utf8')
    } catch {
      // first run
    }
    writeFileSync(docPath, renderDoc(results, previous))
    console.log(`written: ${docPath}, ${join(dirname(docPath), 'bench')}/results.json and charts`)
  }
  if (results.errors.length > 0) {
    console.error(
      `\n${results.errors.length} suite(s) failed: ${results.errors.map((e) => e.suite).join(', ')}`,
    )
    return 1
  }
  return 0
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err)
    process.exitCode = 1
  },
)
