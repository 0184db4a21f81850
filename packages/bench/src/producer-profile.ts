/**
 * The producer's profile, taken the same way every time (docs/benchmarks.md, "How the producer is
 * profiled"): one Dispatcher submitting `{ n }` in a closed loop at concurrency 50 to one worker
 * (concurrency 50, prefetch 50, a handler that returns null) in a child process. After 5,000
 * untimed jobs it times `--jobs` more and prints one JSON line: jobs/s, the producer's CPU per
 * job, the bytes it allocated per submit (heap growth between collections, from v8.GCProfiler),
 * its GC time per 1,000 jobs and Redis's CPU per job (the worker's completes are in it too).
 * `--cpu <file>` or `--alloc <file>` also writes a CPU profile or a sampling heap profile
 * (objects the GC collected included) of the timed jobs and prints its top frames or allocation
 * sites. `--library <dir>` takes the producer from another build of hedgeyard (its `dist`), to
 * compare two builds against the same worker; without `--redis` a private redis-server is started.
 * `--signal` gives each submit an AbortSignal of its own, as the gateway's submits carry their
 * client's connection (the AbortController is made in the loop: the caller's bytes, counted too).
 * `--bulk <n>` submits in suite a's shape instead of the closed loop: rounds of n submits made at
 * once, each round awaited whole; `--queue-capacity <n>` sets the worker's (64 by default, so a
 * round of thousands waits for room; suite a gives its worker 100,000). `--request-bytes <n>` adds
 * a text of n bytes to each request (a chat's request carries its conversation): Redis's CPU per
 * job then shows what the request's size costs it (written by dispatch, read by the worker and
 * by complete).
 *
 *   node packages/bench/dist/producer-profile.js [--jobs 40000] [--cpu f | --alloc f] [--library dir] [--redis url] [--signal] [--bulk n] [--queue-capacity n] [--request-bytes n]
 */
import { spawn } from 'node:child_process'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { startWorkers } from 'hedgeyard'
import { Redis } from 'ioredis'
import { checkArgs, numberOption, type OptionSpec } from './cli.js'
import { startCapture } from './profile-capture.js'
import { redisCpuSeconds } from './redis-info.js'

const USAGE =
  'usage: node packages/bench/dist/producer-profile.js [--jobs 40000] [--cpu <file> | --alloc <file>] [--library <dir>] [--redis <url>] [--signal] [--bulk <n>] [--queue-capacity <n>] [--request-bytes <n>]'
const OPTIONS = {
  jobs: { type: 'string', default: '40000' },
  cpu: { type: 'string' },
  alloc: { type: 'string' },
  library: { type: 'string' },
  redis: { type: 'string' },
  worker: { type: 'string' },
  signal: { type: 'boolean', default: false },
  bulk: { type: 'string' },
  'queue-capacity': { type: 'string' },
  'request-bytes': { type: 'string' },
} as const satisfies OptionSpec

const CONCURRENCY = 50
const WARMUP_JOBS = 5_000
const POOL = 'profile'

/** The worker side, in its own process: `producer-profile.js --worker <url>`. */
async function runWorker(url: string, queueCapacity: number): Promise<void> {
  const group = await startWorkers({
    redis: url,
    pool: POOL,
    count: 1,
    concurrency: 50,
    prefetch: 50,
    queueCapacity,
    handler: () => null,
  })
  process.stdout.write('ready\n')
  // Stopped by SIGTERM, or when its parent is gone (its stdin closes).
  const stop = () => void group.close().then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.stdin.on('end', stop).resume()
}

async function main(): Promise<void> {
  checkArgs('producer-profile.js', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  const queueCapacity = numberOption('queue-capacity', values['queue-capacity'], 64, { min: 0 })
  if (values.worker !== undefined) return runWorker(values.worker, queueCapacity)
  const server = values.redis === undefined ? await startRedisServer() : undefined
  const url = values.redis ?? (server?.url as string)
  const worker = spawn(
    process.execPath,
    [import.meta.filename, '--worker', url, '--queue-capacity', String(queueCapacity)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  )
  await new Promise<void>((ready) => worker.stdout.once('data', () => ready()))
  const library = values.library === undefined ? 'hedgeyard' : `${resolve(values.library)}/index.js`
  const { Dispatcher } = (await import(library)) as typeof import('hedgeyard')
  const dispatcher = new Dispatcher({ redis: url, pool: POOL })
  const redis = new Redis(url)
  const withSignal = values.signal === true
  const bulk = values.bulk === undefined ? undefined : numberOption('bulk', values.bulk, 0)
  const text = 'x'.repeat(numberOption('request-bytes', values['request-bytes'], 0, { min: 0 }))
  const request = (n: number) => (text === '' ? { n } : { n, text })
  const run = async (jobs: number) => {
    if (bulk !== undefined) {
      for (let done = 0; done < jobs; done += bulk) {
        const round: Promise<unknown>[] = []
        for (let i = 0; i < Math.min(bulk, jobs - done); i++)
          round.push(dispatcher.submit(request(done + i), { onSaturated: 'wait' }))
        await Promise.all(round)
      }
      return
    }
    let next = 0
    const loop = async () => {
      while (next < jobs) {
        next++
        await dispatcher.submit(
          request(next),
          withSignal ? { signal: new AbortController().signal } : undefined,
        )
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, loop))
  }
  await run(WARMUP_JOBS)

  const jobs = Number(values.jobs)
  const capture = await startCapture(values)
  const redisBefore = (await redisCpuSeconds(redis)).total
  const started = performance.now()
  await run(jobs)
  const seconds = (performance.now() - started) / 1000
  const cost = await capture.stop(jobs)
  const redisSeconds = (await redisCpuSeconds(redis)).total - redisBefore
  const line = {
    jobsPerSecond: Math.round(jobs / seconds),
    cpuUsPerJob: cost.cpuUsPerJob,
    bytesPerSubmit: cost.bytesPerJob,
    gcMsPer1000Jobs: cost.gcMsPer1000Jobs,
    redisCpuUsPerJob: Math.round((redisSeconds * 1e7) / jobs) / 10,
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
  await capture.report(jobs)
  await dispatcher.close()
  redis.disconnect()
  worker.kill('SIGTERM')
  await new Promise((done) => worker.once('exit', done))
  await server?.stop()
}

await main()
