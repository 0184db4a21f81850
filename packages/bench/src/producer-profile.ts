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
 *
 *   node packages/bench/dist/producer-profile.js [--jobs 40000] [--cpu f | --alloc f] [--library dir] [--redis url]
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { GCProfiler } from 'node:v8'
import { startRedisServer } from '@hedgeyard/redis-server'
import { startWorkers } from 'hedgeyard'
import { Redis } from 'ioredis'
import { redisCpuSeconds } from './redis-info.js'

const CONCURRENCY = 50
const WARMUP_JOBS = 5_000
const POOL = 'profile'

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize?: number
  id?: number
  children?: ProfileNode[] | number[]
}

/** The worker side, in its own process: `producer-profile.js --worker <url>`. */
async function runWorker(url: string): Promise<void> {
  const group = await startWorkers({
    redis: url,
    pool: POOL,
    count: 1,
    concurrency: 50,
    prefetch: 50,
    handler: () => null,
  })
  process.stdout.write('ready\n')
  // Stopped by SIGTERM, or when its parent is gone (its stdin closes).
  const stop = () => void group.close().then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.stdin.on('end', stop).resume()
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string', default: '40000' },
      cpu: { type: 'string' },
      alloc: { type: 'string' },
      library: { type: 'string' },
      redis: { type: 'string' },
      worker: { type: 'string' },
    },
  })
  if (values.worker !== undefined) return runWorker(values.worker)
  const server = values.redis === undefined ? await startRedisServer() : undefined
  const url = values.redis ?? (server?.url as string)
  const worker = spawn(process.execPath, [import.meta.filename, '--worker', url], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  await new Promise<void>((ready) => worker.stdout.once('data', () => ready()))
  const library = values.library === undefined ? 'hedgeyard' : `${resolve(values.library)}/index.js`
  const { Dispatcher } = (await import(library)) as typeof import('hedgeyard')
  const dispatcher = new Dispatcher({ redis: url, pool: POOL })
  const redis = new Redis(url)
  const run = async (jobs: number) => {
    let next = 0
    const loop = async () => {
      while (next < jobs) {
        next++
        await dispatcher.submit({ n: next })
      }
    }
    await Promise.all(Array.from({ length: CONCURRENCY }, loop))
  }
  await run(WARMUP_JOBS)

  const jobs = Number(values.jobs)
  const session = new Session()
  session.connect()
  if (values.cpu !== undefined) {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 100 })
    await session.post('Profiler.start')
  }
  if (values.alloc !== undefined) {
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
  }
  const gc = new GCProfiler()
  gc.start()
  const heapBefore = process.memoryUsage().heapUsed
  const redisBefore = (await redisCpuSeconds(redis)).total
  const cpuBefore = process.cpuUsage()
  const started = performance.now()
  await run(jobs)
  const seconds = (performance.now() - started) / 1000
  const cpu = process.cpuUsage(cpuBefore)
  const heapAfter = process.memoryUsage().heapUsed
  const { statistics } = gc.stop()
  const redisSeconds = (await redisCpuSeconds(redis)).total - redisBefore
  // Allocated: what the heap grew by up to each collection, and after the last one.
  let allocated = 0
  let last = heapBefore
  for (const s of statistics) {
    allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - last)
    last = s.afterGC.heapStatistics.usedHeapSize
  }
  allocated += Math.max(0, heapAfter - last)
  const gcMs = statistics.reduce((sum, s) => sum + s.cost, 0) / 1000
  const round = (n: number) => Math.round(n * 10) / 10
  const line = {
    jobsPerSecond: Math.round(jobs / seconds),
    cpuUsPerJob: round((cpu.user + cpu.system) / jobs),
    bytesPerSubmit: Math.round(allocated / jobs),
    gcMsPer1000Jobs: round((gcMs / jobs) * 1000),
    redisCpuUsPerJob: round((redisSeconds * 1e6) / jobs),
  }
  process.stdout.write(`${JSON.stringify(line)}\n`)
  if (values.cpu !== undefined) {
    const { profile } = await session.post('Profiler.stop')
    writeFileSync(values.cpu, JSON.stringify(profile))
    const nodes = new Map(profile.nodes.map((n) => [n.id, n as ProfileNode]))
    const samples = new Map<ProfileNode, number>()
    for (const id of profile.samples ?? []) {
      const node = nodes.get(id) as ProfileNode
      samples.set(node, (samples.get(node) ?? 0) + 1)
    }
    printTop('self CPU', samples, (n) => n.callFrame.functionName !== '(idle)', '%')
  }
  if (values.alloc !== undefined) {
    const { profile } = await session.post('HeapProfiler.stopSampling')
    writeFileSync(values.alloc, JSON.stringify(profile))
    const sizes = new Map<ProfileNode, number>()
    const walk = (n: ProfileNode) => {
      sizes.set(n, n.selfSize ?? 0)
      for (const c of (n.children ?? []) as ProfileNode[]) walk(c)
    }
    walk(profile.head as ProfileNode)
    printTop('bytes allocated per submit', sizes, () => true, jobs)
  }
  session.disconnect()
  await dispatcher.close()
  redis.disconnect()
  worker.kill('SIGTERM')
  await new Promise((done) => worker.once('exit', done))
  await server?.stop()
}

/** The 15 largest entries by function (name, file, line), as a share or per job. */
function printTop(
  title: string,
  weights: Map<ProfileNode, number>,
  isCounted: (n: ProfileNode) => boolean,
  per: number | '%',
): void {
  const byFunction = new Map<string, number>()
  let total = 0
  for (const [node, weight] of weights) {
    if (!isCounted(node)) continue
    const f = node.callFrame
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + weight)
    total += weight
  }
  process.stdout.write(`${title}:\n`)
  for (const [name, weight] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    const shown = per === '%' ? `${((weight / total) * 100).toFixed(1)}%` : `${Math.round(weight / per)} B`
    process.stdout.write(`  ${shown.padStart(7)}  ${name}\n`)
  }
}

await main()
