/**
 * Suite a (or b, or f) of two builds of the project, A/B in one run: each build runs its own bench code
 * (`pairFor` and `measureRun` from its own `packages/bench/dist`), the two alternating, the build
 * that goes first changing from pair to pair, a fresh redis-server for every run. This is how
 * docs/benchmarks.md compares a change with the build before it ("Issue 13, no loss of speed"):
 * runs on different days differ by more than most changes.
 *
 *   node packages/bench/dist/ab-builds.js --before <root> --after <root> [--pairs 20]
 *     [--concurrency 50] [--workload bulk|sequential|streams] [--every-ms N] [--before-system hedgeyard]
 *
 * `--workload streams` is suite f's: 1,000 streams of 50 chunks at a worker of concurrency 1,000
 * (the `--concurrency` given is ignored), as fast as the handler can yield, or with `--every-ms N` a
 * chunk every N ms, in step; its figures are per chunk (chunks/s, CPU per chunk, chunk latency).
 *
 * `<root>` is a checkout of the project with its packages built (`npm run build`); a build from
 * before the project's rename takes `--before-system switchyard`. Prints one JSON line per run,
 * then the medians of each build and of the paired ratios after / before.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { Redis } from 'ioredis'
import { checkArgs, type OptionSpec } from './cli.js'

interface Build {
  tag: 'before' | 'after'
  root: string
  system: string
  measureRun: (ctx: unknown, spec: unknown) => Promise<Measured>
  pairFor: (system: string, ctx: unknown, options: unknown) => unknown
}

interface Measured {
  jobs: number
  jobsPerSecond: number
  wallMs: number
  redisCpuUs: number
  producer: { cpuUs: number }
  worker: { cpuUs: number }
  otherCpuLoad: number
  latenciesUs?: number[]
  extra: Record<string, unknown>
}

type Row = Record<string, number>

const USAGE =
  'usage: ab-builds.js --before <root> --after <root> [--pairs 20] [--concurrency 50] ' +
  '[--workload bulk|sequential|streams] [--every-ms N] [--before-system hedgeyard]\n'

function refuse(message: string): never {
  process.stderr.write(`ab-builds: ${message}\n${USAGE}`)
  process.exit(2)
}

const OPTIONS = {
  before: { type: 'string' },
  after: { type: 'string' },
  pairs: { type: 'string', default: '20' },
  concurrency: { type: 'string', default: '50' },
  workload: { type: 'string', default: 'bulk' },
  'every-ms': { type: 'string' },
  'before-system': { type: 'string', default: 'hedgeyard' },
} as const satisfies OptionSpec

function options() {
  checkArgs('ab-builds', USAGE.trimEnd(), OPTIONS)
  return parseArgs({ options: OPTIONS, strict: true }).values
}

const values = options()
if (values.before === undefined || values.after === undefined)
  refuse('--before <root> and --after <root> are required')
if (values.workload !== 'bulk' && values.workload !== 'sequential' && values.workload !== 'streams') {
  refuse(`--workload is bulk, sequential or streams, not ${values.workload}`)
}
const isStreams = values.workload === 'streams'
const pairs = Number(values.pairs)
const concurrency = isStreams ? 1_000 : Number(values.concurrency)
if (!Number.isInteger(pairs) || pairs < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
  refuse('--pairs and --concurrency are whole numbers from 1')
}
const everyMs = values['every-ms'] === undefined ? undefined : Number(values['every-ms'])
if (everyMs !== undefined && (!isStreams || !Number.isInteger(everyMs) || everyMs < 1)) {
  refuse('--every-ms is a whole number of ms from 1, with --workload streams')
}
const workload = isStreams
  ? { kind: 'streams', streams: 1_000, chunks: 50, warmupStreams: 100 }
  : values.workload === 'bulk'
    ? { kind: 'bulk', jobs: 20_000, warmupJobs: 1_000 }
    : { kind: 'sequential', jobs: 2_000, warmupJobs: 200 }
/** Suite f's work and result TTL for streams; a no-op job otherwise. */
const runOptions = isStreams
  ? { work: everyMs === undefined ? { kind: 'stream' } : { kind: 'stream', everyMs }, resultTtlMs: 2_000 }
  : { work: { kind: 'noop' } }

async function load(tag: Build['tag'], root: string, system: string): Promise<Build> {
  const dist = resolve(root, 'packages/bench/dist')
  const mr = (await import(`${dist}/measure-run.js`)) as Pick<Build, 'measureRun'>
  const sys = (await import(`${dist}/systems.js`)) as Pick<Build, 'pairFor'>
  return { tag, root, system, measureRun: mr.measureRun, pairFor: sys.pairFor }
}

const builds = [
  await load('before', values.before, values['before-system']),
  await load('after', values.after, 'hedgeyard'),
]
const loadAvg = () => readFileSync('/proc/loadavg', 'utf8').split(' ')[0]
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]

const rows: { before: Row; after: Row }[] = []
for (let p = 1; p <= pairs; p++) {
  const pair: Partial<Record<Build['tag'], Row>> = {}
  for (const b of p % 2 === 1 ? builds : [...builds].reverse()) {
    const server = await startRedisServer()
    const conn = new Redis(server.url)
    const ctx = {
      redisUrl: server.url,
      conn,
      isQuick: false,
      quietWaitMs: 3_000,
      attempts: 1,
      retries: { used: 0, max: 0 },
      log: () => {},
    }
    const spec = b.pairFor(b.system, ctx, { name: `ab-${p}`, concurrency, ...runOptions, workload })
    const loadBefore = loadAvg()
    const m = await b.measureRun(ctx, spec)
    // Streams count per chunk, jobs per job.
    const units = isStreams ? Number(m.extra.chunks) : m.jobs
    const per = (us: number) => Math.round((us / units) * 100) / 100
    const rate = isStreams ? { chunksPerSecond: Math.round(units / (m.wallMs / 1_000)) } : {}
    const row: Row = {
      ...rate,
      jobsPerSecond: Math.round(m.jobsPerSecond),
      cpuUsPerJob: per(m.redisCpuUs + m.producer.cpuUs + m.worker.cpuUs),
      redisUsPerJob: per(m.redisCpuUs),
      producerUsPerJob: per(m.producer.cpuUs),
      workerUsPerJob: per(m.worker.cpuUs),
    }
    if (m.latenciesUs !== undefined && m.latenciesUs.length > 0) {
      const sorted = [...m.latenciesUs].sort((x, y) => x - y)
      row.p50Us = Math.round(percentile(sorted, 0.5) as number)
      row.p99Us = Math.round(percentile(sorted, 0.99) as number)
    }
    pair[b.tag] = row
    const conditions = {
      otherCpuLoad: Math.round(m.otherCpuLoad * 100) / 100,
      load: `${loadBefore}-${loadAvg()}`,
    }
    process.stdout.write(`${JSON.stringify({ pair: p, build: b.tag, ...row, ...conditions })}\n`)
    conn.disconnect()
    await server.stop()
  }
  rows.push(pair as { before: Row; after: Row })
}

const median = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2
}
const pace = everyMs === undefined ? '' : `, a chunk every ${everyMs} ms`
process.stdout.write(`\n${pairs} pairs, concurrency ${concurrency}, workload ${values.workload}${pace}\n`)
for (const name of Object.keys(rows[0]?.after ?? {})) {
  const ratios = rows.map((r) => (r.after[name] as number) / (r.before[name] as number))
  const atLeast = rows.filter((r) => (r.after[name] as number) >= (r.before[name] as number)).length
  process.stdout.write(
    `${name.padEnd(17)} before ${median(rows.map((r) => r.before[name] as number))
      .toFixed(1)
      .padStart(9)}` +
      `  after ${median(rows.map((r) => r.after[name] as number))
        .toFixed(1)
        .padStart(9)}` +
      `  after/before ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` +
      `  after >= before in ${atLeast} of ${rows.length}\n`,
  )
}
