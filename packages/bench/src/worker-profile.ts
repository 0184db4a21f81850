/**
 * The worker's profile, taken the same way every time (docs/benchmarks.md, "How the worker is
 * profiled"): one worker (concurrency 50, prefetch 50, a handler that returns null, or with
 * `--handler promise` a promise of null) fed by a Dispatcher in a child process that keeps
 * `--inflight` submits under way, enough to keep its slots and its read-ahead full. After 5,000
 * untimed jobs it times `--jobs` more and prints one JSON line: jobs/s, the worker's CPU per job,
 * the bytes it allocated per job, its GC time per 1,000 jobs and Redis's CPU per job (the
 * producer's dispatches are in it too). `--cpu <file>` or `--alloc <file>` also writes a CPU
 * profile or a sampling heap profile (objects the GC collected included) of the timed jobs and
 * prints its top frames or allocation sites. `--library <dir>` takes the worker from another
 * build of hedgeyard (its `dist`), to compare two builds against the same producer; without
 * `--redis` a private redis-server is started.
 *
 *   node packages/bench/dist/worker-profile.js [--jobs 40000] [--handler plain|promise] [--cpu f | --alloc f] [--library dir] [--redis url]
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { Dispatcher } from 'hedgeyard'
import { Redis } from 'ioredis'
import { checkArgs, type OptionSpec } from './cli.js'
import { startCapture } from './profile-capture.js'
import { redisCpuSeconds } from './redis-info.js'

const USAGE =
  'usage: node packages/bench/dist/worker-profile.js [--jobs 40000] [--handler plain|promise] [--inflight 100] [--cpu <file> | --alloc <file>]\n  [--library <dir>] [--redis <url>]'
const OPTIONS = {
  jobs: { type: 'string', default: '40000' },
  handler: { type: 'string', default: 'plain' },
  inflight: { type: 'string', default: '100' },
  cpu: { type: 'string' },
  alloc: { type: 'string' },
  library: { type: 'string' },
  redis: { type: 'string' },
  producer: { type: 'string' },
} as const satisfies OptionSpec

const WARMUP_JOBS = 5_000
const POOL = 'worker-profile'

/** The producer side, in its own process: `worker-profile.js --producer <url> --inflight n`. */
async function runProducer(url: string, inflight: number): Promise<void> {
  const dispatcher = new Dispatcher({ redis: url, pool: POOL })
  let isStopped = false
  // Stopped by SIGTERM, or when its parent is gone (its stdin closes).
  const stop = () => {
    isStopped = true
    void dispatcher.close().then(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.stdin.on('end', stop).resume()
  let n = 0
  const loop = async () => {
    while (!isStopped) {
      // A submit that fails while stopping, or finds no worker yet, is just tried again.
      await dispatcher.submit({ n: ++n }).catch(() => new Promise((r) => setTimeout(r, 10)))
    }
  }
  await Promise.all(Array.from({ length: inflight }, loop))
}

async function main(): Promise<void> {
  checkArgs('worker-profile.js', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  if (values.producer !== undefined) return runProducer(values.producer, Number(values.inflight))
  if (values.handler !== 'plain' && values.handler !== 'promise') {
    throw new Error(`--handler must be plain or promise (got ${values.handler})`)
  }
  const server = values.redis === undefined ? await startRedisServer() : undefined
  const url = values.redis ?? (server?.url as string)
  const library = values.library === undefined ? 'hedgeyard' : `${resolve(values.library)}/index.js`
  const { startWorkers } = (await import(library)) as typeof import('hedgeyard')

  // The window is counted in jobs the handler ran: `reached` fires when it has run `mark`.
  let handled = 0
  let mark = WARMUP_JOBS
  let reached: () => void = () => {}
  const at = (count: number) =>
    new Promise<void>((r) => {
      mark = count
      reached = r
    })
  const warm = at(WARMUP_JOBS)
  const handler =
    values.handler === 'plain'
      ? () => {
          if (++handled === mark) reached()
          return null
        }
      : async () => {
          if (++handled === mark) reached()
          return null
        }
  const group = await startWorkers({
    redis: url,
    pool: POOL,
    count: 1,
    concurrency: 50,
    prefetch: 50,
    handler,
  })
  const producer = spawn(
    process.execPath,
    [import.meta.filename, '--producer', url, '--inflight', values.inflight],
    { stdio: ['pipe', 'inherit', 'inherit'] },
  )
  await warm

  const redis = new Redis(url)
  const jobs = Number(values.jobs)
  const capture = await startCapture(values)
  const redisBefore = (await redisCpuSeconds(redis)).total
  const first = handled
  const started = performance.now()
  await at(first + jobs)
  const seconds = (performance.now() - started) / 1000
  const ran = handled - first
  const cost = await capture.stop(ran)
  const redisSeconds = (await redisCpuSeconds(redis)).total - redisBefore
  const line = {
    handler: values.handler,
    jobsPerSecond: Math.round(ran / seconds),
    cpuUsPerJob: cost.cpuUsPerJob,
    bytesPerJob: cost.bytesPerJob,
    gcMsPer1000Jobs: cost.gcMsPer1000Jobs,
    redisCpuUsPerJob: Math.round((redisSeconds * 1e7) / ran) / 10,
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
  await capture.report(ran)
  producer.kill('SIGTERM')
  await new Promise((done) => producer.once('exit', done))
  await group.close()
  redis.disconnect()
  await server?.stop()
}

await main()
