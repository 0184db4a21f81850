import { execFile } from 'node:child_process'
import { startExporter } from '@hedgeyard/testing/exporter'
import {
  CLI,
  cleanupPool,
  client,
  eventually,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { type PromFamily, parsePromText } from '@hedgeyard/testing/prom-text'
import { startProxy } from '@hedgeyard/testing/proxy'
import { watchedPool } from '@hedgeyard/testing/watched-pool'
import {
  Dispatcher,
  drainWorkers,
  inspectCells,
  inspectPool,
  poolKeys,
  setPoolLimits,
  startWorkers,
} from 'hedgeyard'
import { queueKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const c = client()
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})
afterAll(() => c.disconnect())

async function scrape(url: string): Promise<Map<string, PromFamily>> {
  const res = await fetch(`${url}/metrics`)
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parsePromText(await res.text())
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
function sampleValue(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string>,
): number | undefined {
  const matches = (families.get(name)?.samples ?? []).filter((s) =>
    Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )
  if (matches.length > 1)
    throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`)
  return matches[0]?.value
}

describe('hedgeyard exporter', () => {
  it("answers /metrics with the pools' state as Prometheus reads it, fresh at each scrape", async () => {
    const pool = uniquePool('exp')
    const empty = uniquePool('exp-empty')
    const ref = { redis: redisUrl(), pool }
    const {
      start,
      dispatcher: d,
      jobs,
      worker,
    } = watchedPool({
      pool,
      coolPrefix: 'exp-cool',
      concurrency: 3,
      queueCapacity: 5,
      cleanups,
    })

    // A draining worker holding a job, a cooling worker, and two that run jobs, some failing.
    await start('exp-drain', 1)
    jobs.push(d.submit({ hold: true }, { timeoutMs: 60_000 }).catch((err) => err))
    await eventually(async () => (await worker('exp-drain-1'))?.inflight === 1)
    await drainWorkers(ref, ['exp-drain-1'])
    await start('exp-cool', 1)
    jobs.push(d.submit({}, { timeoutMs: 10_000 }).catch((err) => err))
    await eventually(async () => ((await worker('exp-cool-1'))?.coolingMs ?? 0) > 0)
    const runners = await start('exp-run', 2)
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => d.submit({ fail: i % 4 === 0 }, { timeoutMs: 10_000 })),
    )
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(3)
    // A hostile entry in a worker's stream: the worker moves it to the dead letters.
    await c.xadd(queueKey(poolKeys('hy', pool), 'exp-run-1'), '*', 'junk', 'not a job')
    await eventually(async () => (await c.xlen(poolKeys('hy', pool).dead)) === 1)
    await setPoolLimits(ref, { rate: { limit: 100, periodMs: 1_000, burst: 10 } })
    // A producer reports its stats when it closes.
    const producer = new Dispatcher({ redis: redisUrl(), pool })
    await producer.submit({}, { timeoutMs: 10_000 })
    await producer.close()

    const exporter = await startExporter(['--redis', redisUrl(), '--pool', pool, '--pool', empty], cleanups)
    const m = await scrape(exporter.url)
    const truth = await inspectPool(ref)

    // Names, types and labels: base units, counters end in _total, no job, session or producer ids.
    const ours = [...m.keys()].filter((name) => name.startsWith('hedgeyard_'))
    expect(ours.sort()).toEqual(
      [
        'hedgeyard_dead_letters',
        'hedgeyard_exporter_scrape_duration_seconds',
        'hedgeyard_pool_quota_burst',
        'hedgeyard_pool_quota_limit',
        'hedgeyard_pool_quota_period_seconds',
        'hedgeyard_pool_up',
        'hedgeyard_producers_reporting',
        'hedgeyard_worker_alive',
        'hedgeyard_worker_breaker_open',
        'hedgeyard_worker_capacity',
        'hedgeyard_worker_concurrency',
        'hedgeyard_worker_cooldown_seconds',
        'hedgeyard_worker_errors_total',
        'hedgeyard_worker_inflight',
        'hedgeyard_worker_processed_total',
        'hedgeyard_worker_queued',
        'hedgeyard_worker_state',
        'hedgeyard_workers_alive',
        'hedgeyard_workers_registered',
      ].sort(),
    )
    for (const name of ours) {
      const f = m.get(name) as PromFamily
      expect(f.type, name).toBe(name.endsWith('_total') ? 'counter' : 'gauge')
      expect(f.help, name).not.toBe('')
      for (const s of f.samples) {
        const expected = name.startsWith('hedgeyard_worker_')
          ? name === 'hedgeyard_worker_state'
            ? ['cell', 'pool', 'state', 'worker']
            : ['cell', 'pool', 'worker']
          : name.startsWith('hedgeyard_pool_quota_')
            ? ['cell', 'limiter', 'pool']
            : name.startsWith('hedgeyard_exporter_')
              ? []
              : ['cell', 'pool']
        // An ordinary pool's cell is empty, as in the library's metrics.
        if (expected.includes('cell')) expect(s.labels.cell, name).toBe('')
        expect(Object.keys(s.labels).sort(), `${name} ${JSON.stringify(s.labels)}`).toEqual(expected)
      }
    }
    // The exporter process's own metrics come too.
    expect(m.get('process_cpu_seconds_total')?.type).toBe('counter')

    // Values: what the pool holds.
    const both = { pool }
    expect(sampleValue(m, 'hedgeyard_pool_up', both)).toBe(1)
    expect(sampleValue(m, 'hedgeyard_pool_up', { pool: empty })).toBe(1)
    expect(sampleValue(m, 'hedgeyard_workers_registered', both)).toBe(4)
    expect(sampleValue(m, 'hedgeyard_workers_alive', both)).toBe(4)
    expect(sampleValue(m, 'hedgeyard_workers_registered', { pool: empty })).toBe(0)
    expect(sampleValue(m, 'hedgeyard_dead_letters', both)).toBe(1)
    expect(sampleValue(m, 'hedgeyard_producers_reporting', both)).toBeGreaterThanOrEqual(1)
    expect(sampleValue(m, 'hedgeyard_pool_quota_limit', { pool, limiter: 'rate' })).toBe(100)
    expect(sampleValue(m, 'hedgeyard_pool_quota_period_seconds', { pool, limiter: 'rate' })).toBe(1)
    expect(sampleValue(m, 'hedgeyard_pool_quota_burst', { pool, limiter: 'rate' })).toBe(10)
    expect(sampleValue(m, 'hedgeyard_pool_quota_limit', { pool, limiter: 'cost' })).toBeUndefined()
    const state = (workerId: string) =>
      (m.get('hedgeyard_worker_state')?.samples ?? [])
        .filter((s) => s.labels.worker === workerId && s.value === 1)
        .map((s) => s.labels.state)
    expect(state('exp-drain-1')).toEqual(['draining'])
    expect(state('exp-cool-1')).toEqual(['cooling'])
    expect(state('exp-run-1')).toEqual(['active'])
    expect(
      m.get('hedgeyard_worker_state')?.samples.filter((s) => s.labels.worker === 'exp-run-2'),
    ).toHaveLength(4)
    expect(sampleValue(m, 'hedgeyard_worker_inflight', { pool, worker: 'exp-drain-1' })).toBe(1)
    expect(
      sampleValue(m, 'hedgeyard_worker_cooldown_seconds', { pool, worker: 'exp-cool-1' }),
    ).toBeGreaterThan(60)
    expect(sampleValue(m, 'hedgeyard_worker_cooldown_seconds', { pool, worker: 'exp-run-1' })).toBe(0)
    for (const w of truth) {
      const labels = { pool, worker: w.workerId }
      expect(sampleValue(m, 'hedgeyard_worker_alive', labels)).toBe(1)
      expect(sampleValue(m, 'hedgeyard_worker_capacity', labels)).toBe(8)
      expect(sampleValue(m, 'hedgeyard_worker_concurrency', labels)).toBe(3)
      expect(sampleValue(m, 'hedgeyard_worker_breaker_open', labels)).toBe(0)
      expect(sampleValue(m, 'hedgeyard_worker_queued', labels)).toBe(0)
      expect(sampleValue(m, 'hedgeyard_worker_processed_total', labels), w.workerId).toBe(w.processed)
      expect(sampleValue(m, 'hedgeyard_worker_errors_total', labels), w.workerId).toBe(w.errors)
    }
    const processed = (m.get('hedgeyard_worker_processed_total')?.samples ?? []).reduce(
      (n, s) => n + s.value,
      0,
    )
    const errors = (m.get('hedgeyard_worker_errors_total')?.samples ?? []).reduce((n, s) => n + s.value, 0)
    // 12 jobs and the producer's one on the runners, the 429 on the cooling worker.
    expect(processed).toBe(14)
    expect(errors).toBe(4)
    expect(sampleValue(m, 'hedgeyard_exporter_scrape_duration_seconds', {})).toBeGreaterThan(0)

    // Fresh at each scrape: workers that leave take their series with them.
    await runners.close()
    const after = await scrape(exporter.url)
    expect(sampleValue(after, 'hedgeyard_workers_registered', both)).toBe(2)
    expect(
      after
        .get('hedgeyard_worker_inflight')
        ?.samples.map((s) => s.labels.worker)
        .sort(),
    ).toEqual(['exp-cool-1', 'exp-drain-1'])

    const health = await fetch(`${exporter.url}/healthz`)
    expect([health.status, await health.text()]).toEqual([200, 'ok\n'])
    expect((await fetch(`${exporter.url}/nothing`)).status).toBe(404)
    expect((await fetch(`${exporter.url}/metrics`, { method: 'POST' })).status).toBe(405)
  })

  it('reports a pool it cannot read as hedgeyard_pool_up 0, and recovers', async () => {
    const pool = uniquePool('exp-cut')
    const group = await startWorkers({ redis: redisUrl(), pool, handler: () => 'ok', idPrefix: 'cut' })
    const proxy = await startProxy(redisUrl())
    cleanups.push(async () => {
      await proxy.close()
      await group.close()
      await cleanupPool(c, pool)
    })
    const exporter = await startExporter(['--redis', proxy.url, '--pool', pool], cleanups)
    expect(sampleValue(await scrape(exporter.url), 'hedgeyard_pool_up', { pool })).toBe(1)
    proxy.cut()
    const down = await scrape(exporter.url)
    expect(sampleValue(down, 'hedgeyard_pool_up', { pool })).toBe(0)
    // Nothing it cannot vouch for: no worker series while the pool cannot be read.
    expect(down.get('hedgeyard_worker_inflight')?.samples ?? []).toEqual([])
    expect(exporter.output()).toContain('cannot read pool')
    proxy.restore()
    await eventually(
      async () => sampleValue(await scrape(exporter.url), 'hedgeyard_pool_up', { pool }) === 1,
      15_000,
    )
    expect(sampleValue(await scrape(exporter.url), 'hedgeyard_workers_alive', { pool })).toBe(1)
  })

  it('with --cells, exports each cell of a logical pool labelled with the pool and its cell', async () => {
    const pool = uniquePool('exp-cells')
    const workers: WorkerProcess[] = []
    cleanups.push(async () => {
      await Promise.all(workers.map((w) => w.stop('SIGKILL')))
      for (let i = 0; i < 3; i++) await cleanupPool(c, `${pool}.${i}`)
    })
    // Two worker processes (one worker each) in two of the three cells; the third cell is empty.
    for (let i = 0; i < 2; i++) {
      workers.push(
        await spawnWorker({ pool, handler: 'echo.js', idPrefix: `xc${i}`, extraArgs: ['--cells', '3'] }),
      )
    }
    const truth = await inspectCells({ redis: redisUrl(), pool, cells: 3 })
    const exporter = await startExporter(['--redis', redisUrl(), '--pool', pool, '--cells', '3'], cleanups)
    const m = await scrape(exporter.url)
    for (const view of truth) {
      const at = { pool, cell: String(view.cell) }
      expect(sampleValue(m, 'hedgeyard_pool_up', at)).toBe(1)
      expect(sampleValue(m, 'hedgeyard_workers_alive', at), `cell ${view.cell}`).toBe(
        view.workers.filter((w) => w.alive).length,
      )
      for (const w of view.workers) {
        expect(sampleValue(m, 'hedgeyard_worker_alive', { ...at, worker: w.workerId })).toBe(1)
      }
    }
    expect(truth.map((v) => v.workers.length).sort()).toEqual([0, 1, 1])
    // No series names a cell's pool: every one carries the logical pool.
    for (const f of m.values())
      for (const s of f.samples) if ('pool' in s.labels) expect(s.labels.pool).toBe(pool)
  })

  it('refuses a pool name that keys cannot carry, naming the option', async () => {
    const answer = await new Promise<{ code: number | null; stderr: string }>((resolve) =>
      execFile(
        process.execPath,
        [CLI, 'exporter', '--redis', redisUrl(), '--port', '0', '--pool', 'ok', '--pool', 'not ok'],
        (err, _stdout, stderr) => resolve({ code: (err as { code?: number } | null)?.code ?? 0, stderr }),
      ),
    )
    expect(answer.code).toBe(1)
    expect(answer.stderr).toMatch(/^error INVALID_ARGUMENT: pool must be .*\(got "not ok"\)\n$/)
  })
})
