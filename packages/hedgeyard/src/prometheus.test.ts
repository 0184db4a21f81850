import { redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { parsePromText, samplesOf, sumOf } from '@hedgeyard/testing/prom-text'
import { afterEach, describe, expect, it } from 'vitest'
import { startWorkers } from './consumer/start-workers.js'
import { Dispatcher } from './producer/dispatcher.js'
import { prometheusMetrics } from './prometheus.js'

const closers: (() => Promise<void> | void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe('prometheusMetrics', () => {
  it('counts submits and jobs by outcome, times them, and shows each worker of the process', async () => {
    const pool = uniquePool('prom')
    const metrics = prometheusMetrics()
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 2,
      concurrency: 3,
      queueCapacity: 5,
      metrics,
      handler: async (req: { fail?: boolean; ms: number }) => {
        await new Promise((r) => setTimeout(r, req.ms))
        if (req.fail) throw new Error('no')
        return 'ok'
      },
    })
    closers.push(() => group.close())
    const d = new Dispatcher({ redis: redisUrl(), pool, metrics })
    closers.push(() => d.close())
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) => d.submit({ ms: 30, fail: i % 4 === 0 }, { maxAttempts: 1 })),
    )
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(3)

    const e = parsePromText(await metrics.registry.metrics())
    expect(e.get('hedgeyard_submits_total')?.type).toBe('counter')
    expect(sumOf(e, 'hedgeyard_submits_total', { pool, outcome: 'ok' })).toBe(9)
    expect(sumOf(e, 'hedgeyard_submits_total', { pool, outcome: 'HANDLER_ERROR' })).toBe(3)
    expect(sumOf(e, 'hedgeyard_jobs_total', { pool, outcome: 'ok' })).toBe(9)
    expect(sumOf(e, 'hedgeyard_jobs_total', { pool, outcome: 'HANDLER_ERROR' })).toBe(3)
    // Each job ran about 30 ms: all 12 in the job histogram, none under 10 ms, all under 1 s.
    expect(e.get('hedgeyard_job_duration_seconds')?.type).toBe('histogram')
    expect(sumOf(e, 'hedgeyard_job_duration_seconds_count', { pool })).toBe(12)
    expect(sumOf(e, 'hedgeyard_job_duration_seconds_bucket', { pool, le: '0.01' })).toBe(0)
    expect(sumOf(e, 'hedgeyard_job_duration_seconds_bucket', { pool, le: '1' })).toBe(12)
    expect(sumOf(e, 'hedgeyard_job_duration_seconds_bucket', { pool, le: '120' })).toBe(12)
    expect(sumOf(e, 'hedgeyard_queue_wait_seconds_count', { pool })).toBe(12)
    expect(sumOf(e, 'hedgeyard_submit_duration_seconds_count', { pool })).toBe(12)
    expect(sumOf(e, 'hedgeyard_submit_duration_seconds_bucket', { pool, le: '0.025' })).toBe(0)
    const capacity = samplesOf(e, 'hedgeyard_worker_capacity', { pool })
    expect(capacity.map((s) => s.labels.worker).sort()).toEqual([...group.workerIds].sort())
    expect(capacity.every((s) => s.value === 8)).toBe(true)
    expect(sumOf(e, 'hedgeyard_worker_inflight', { pool })).toBe(0)
    // No job or session ids among the labels.
    for (const s of [...e.values()].flatMap((f) => f.samples))
      expect(Object.keys(s.labels).filter((k) => /job|session/.test(k))).toEqual([])
  })

  it('keeps a closed producer in the totals, and drops stopped workers from the gauges', async () => {
    const pool = uniquePool('prom-close')
    const metrics = prometheusMetrics()
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      count: 2,
      metrics,
      handler: () => new Promise((r) => setTimeout(() => r('ok'), 100)),
    })
    const d = new Dispatcher({ redis: redisUrl(), pool, metrics, hedging: { budgetBurst: 5 } })
    await Promise.all(
      Array.from({ length: 5 }, () => d.submit(null, { hedge: { delayMs: 10, maxAttempts: 2 } })),
    )
    const before = parsePromText(await metrics.registry.metrics())
    const sent = sumOf(before, 'hedgeyard_hedges_sent_total', { pool })
    expect(sent).toBeGreaterThan(0)
    await d.close()
    await group.close()
    const after = parsePromText(await metrics.registry.metrics())
    expect(sumOf(after, 'hedgeyard_hedges_sent_total', { pool })).toBe(sent)
    expect(sumOf(after, 'hedgeyard_submits_total', { pool, outcome: 'ok' })).toBe(5)
    expect(samplesOf(after, 'hedgeyard_worker_capacity', { pool })).toEqual([])
  })

  it('refuses a metrics option that is not an object, naming it', () => {
    expect(() => new Dispatcher({ redis: redisUrl(), pool: 'p', metrics: 5 as never })).toThrow(
      /metrics must be an object/,
    )
  })
})
