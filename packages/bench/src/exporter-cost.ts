/**
 * What one scrape of `hedgeyard exporter` costs with a pool of 1,000 workers: wall time, the
 * exporter's CPU and Redis's CPU per scrape, so an operator can choose a scrape interval.
 *
 *   node packages/bench/dist/exporter-cost.js [--workers <n>] [--scrapes <n>] [--json <file>]
 *
 * Starts its own redis-server and registers the workers with the library's register script (as
 * the dispatch-cost suite does): they never consume, so nothing but the scrapes runs on Redis and
 * its CPU is theirs. Half the workers have read a job (XPENDING counts it running), each has a few
 * queued and finished-job counters. The exporter is the CLI of this checkout in its own process,
 * scraped over HTTP as Prometheus would; its CPU is its own `process_cpu_seconds_total`.
 */
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { CONSUMER_GROUP, queueKey, workerKey } from 'hedgeyard/internal'
import { createBenchPool } from './bench-pool.js'
import { checkArgs, numberOption, type OptionSpec, runMain, startCli } from './cli.js'
import { percentile } from './latency.js'
import { connectWithScripts } from './library-scripts.js'
import { redisCpuSeconds } from './redis-info.js'
import { markdownTable } from './stats.js'

const USAGE =
  'usage: node packages/bench/dist/exporter-cost.js [--workers <n>] [--scrapes <n>] [--json <file>]'
const OPTIONS = {
  workers: { type: 'string' },
  scrapes: { type: 'string' },
  json: { type: 'string' },
} as const satisfies OptionSpec

const POOL = 'exporter-cost'

const RUN_DEFAULTS = Object.freeze({ workers: 1_000, scrapes: 20, warmupScrapes: 3 })

/** The value of an unlabelled sample in a Prometheus text exposition. */
function sample(text: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text)
  if (!m) throw new Error(`the scrape has no ${name}`)
  return Number(m[1])
}

const sort = (values: number[]) => [...values].sort((a, b) => a - b)

async function main(): Promise<undefined> {
  checkArgs('exporter-cost.js', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  const workers = numberOption('workers', values.workers, RUN_DEFAULTS.workers)
  const scrapes = numberOption('scrapes', values.scrapes, RUN_DEFAULTS.scrapes, { min: 2 })

  const server = await startRedisServer()
  const conn = await connectWithScripts(server.url)
  let exporter: ChildProcess | undefined
  try {
    const pool = await createBenchPool(conn, POOL, workers, 42)
    // What running workers show: every other one has read a job, each has finished some.
    const busy = conn.pipeline()
    pool.workerIds.forEach((id, i) => {
      if (i % 2 === 0)
        busy.xreadgroup('GROUP', CONSUMER_GROUP, id, 'COUNT', 1, 'STREAMS', queueKey(pool.keys, id), '>')
      busy.hset(workerKey(pool.keys, id), 'processed', 1_000 + i, 'errors', i % 7)
    })
    await busy.exec()

    const started = await startCli(
      ['exporter', '--redis', server.url, '--pool', POOL, '--port', '0'],
      /"url":"(http:\/\/[^"]+)"/,
    )
    exporter = started.child
    const url = started.match[1]
    const scrape = async () => {
      const t0 = performance.now()
      const res = await fetch(`${url}`)
      const text = await res.text()
      if (res.status !== 200) throw new Error(`scrape answered ${res.status}: ${text}`)
      return { text, wallMs: performance.now() - t0 }
    }
    for (let i = 0; i < RUN_DEFAULTS.warmupScrapes; i++) await scrape()

    // One scrape more than measured: the CPU counter that scrape k+1 reads covers scrape k whole.
    const redisBefore = await redisCpuSeconds(conn)
    const runs: { text: string; wallMs: number }[] = []
    for (let i = 0; i <= scrapes; i++) runs.push(await scrape())
    const redisAfter = await redisCpuSeconds(conn)
    const first = runs[0] as (typeof runs)[number]
    const last = runs[scrapes] as (typeof runs)[number]
    const measured = runs.slice(1)
    const wall = measured.map((r) => r.wallMs)
    const inside = measured.map((r) => sample(r.text, 'hedgeyard_exporter_scrape_duration_seconds') * 1_000)
    const nodeCpuMs =
      ((sample(last.text, 'process_cpu_seconds_total') - sample(first.text, 'process_cpu_seconds_total')) *
        1_000) /
      scrapes
    // INFO cpu counts every scrape of the run: scrapes + 1 of them.
    const redisCpuMs = ((redisAfter.total - redisBefore.total) * 1_000) / (scrapes + 1)
    const series = last.text.split('\n').filter((l) => l.startsWith('hedgeyard_')).length
    const result = {
      workers,
      scrapes,
      series,
      bytes: Buffer.byteLength(last.text),
      wallMs: { median: percentile(sort(wall), 0.5), p99: percentile(sort(wall), 0.99) },
      scrapeDurationMs: { median: percentile(sort(inside), 0.5), p99: percentile(sort(inside), 0.99) },
      nodeCpuMsPerScrape: nodeCpuMs,
      redisCpuMsPerScrape: redisCpuMs,
      redisVersion: server.version,
    }
    const f = (n: number) => n.toFixed(1)
    process.stdout.write(
      `hedgeyard exporter, one pool of ${workers} registered workers (${series} hedgeyard_ series, ${(result.bytes / 1024).toFixed(0)} KiB), ${scrapes} scrapes, Redis ${server.version}\n\n${markdownTable(
        ['', 'median', 'p99'],
        [
          ['scrape, wall time at the client (ms)', f(result.wallMs.median), f(result.wallMs.p99)],
          [
            'hedgeyard_exporter_scrape_duration_seconds (ms)',
            f(result.scrapeDurationMs.median),
            f(result.scrapeDurationMs.p99),
          ],
          ['exporter CPU per scrape (ms)', f(nodeCpuMs), ''],
          ['Redis CPU per scrape (ms)', f(redisCpuMs), ''],
        ],
      )}\n\nScraped every 5 s, that is ${((nodeCpuMs / 5_000) * 100).toFixed(2)}% of a core for the exporter and ${((redisCpuMs / 5_000) * 100).toFixed(2)}% of Redis's.\n`,
    )
    if (values.json) writeFileSync(values.json, `${JSON.stringify(result, null, 2)}\n`)
  } finally {
    exporter?.kill('SIGTERM')
    conn.disconnect()
    await server.stop()
  }
}

runMain(main)
