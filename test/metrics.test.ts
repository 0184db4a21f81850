import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import { CLI, redisUrl, spawnWorker, uniquePool, type WorkerProcess } from '@hedgeyard/testing/helpers'
import { parsePromText, samplesOf, sumOf } from '@hedgeyard/testing/prom-text'
import { Dispatcher } from 'hedgeyard'
import { afterEach, describe, expect, it } from 'vitest'

const closers: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/** A TCP port free now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

describe('hedgeyard worker --metrics-port', () => {
  it('serves its jobs, durations, queue waits and per-worker load as Prometheus text', async () => {
    const pool = uniquePool('metrics')
    const port = await freePort()
    const worker: WorkerProcess = await spawnWorker({
      pool,
      handler: 'echo.js',
      count: 2,
      concurrency: 4,
      extraArgs: ['--metrics-port', String(port), '--metrics-host', '127.0.0.1'],
    })
    closers.push(() => worker.stop())
    const d = new Dispatcher({ redis: redisUrl(), pool })
    closers.push(() => d.close())
    await Promise.all(Array.from({ length: 10 }, (_, i) => d.submit({ i })))

    const res = await fetch(`http://127.0.0.1:${port}/metrics`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
    const e = parsePromText(await res.text())
    expect(sumOf(e, 'hedgeyard_jobs_total', { pool, outcome: 'ok' })).toBe(10)
    expect(sumOf(e, 'hedgeyard_job_duration_seconds_count', { pool })).toBe(10)
    expect(sumOf(e, 'hedgeyard_queue_wait_seconds_count', { pool })).toBe(10)
    expect(e.get('hedgeyard_queue_wait_seconds')?.type).toBe('histogram')
    const concurrency = samplesOf(e, 'hedgeyard_worker_concurrency', { pool })
    expect(concurrency).toHaveLength(2)
    expect(concurrency.every((s) => s.value === 4)).toBe(true)
    // The process's own metrics come with them.
    expect(sumOf(e, 'process_resident_memory_bytes')).toBeGreaterThan(1_000_000)
    expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200)
    expect((await fetch(`http://127.0.0.1:${port}/other`)).status).toBe(404)
  })

  it('refuses a port that is not a number, naming the flag', async () => {
    const run = promisify(execFile)
    const args = [CLI, 'worker', '--redis', redisUrl(), '--handler', 'x.js', '--metrics-port', 'x']
    await expect(run(process.execPath, args)).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--metrics-port must be a non-negative integer \(got 'x'\)/),
    })
  })
})
