import type { PoolSnapshot, WorkerMetrics } from 'hedgeyard'
import { describe, expect, it } from 'vitest'
import { fitMiddle, loadBar } from './format.js'
import { poolRates } from './rates.js'
import { renderFrame, sortWorkers } from './render.js'

function worker(workerId: string, fields: Partial<WorkerMetrics> = {}): WorkerMetrics {
  return {
    workerId,
    host: 'h',
    pid: 1,
    alive: true,
    state: 'active',
    coolingMs: 0,
    breaker: 'closed',
    breakerMs: 0,
    consecutiveFailures: 0,
    inflight: 0,
    queueLen: 0,
    capacity: 72,
    concurrency: 8,
    processed: 0,
    errors: 0,
    ...fields,
  }
}

function snapshot(workers: WorkerMetrics[], fields: Partial<PoolSnapshot> = {}): PoolSnapshot {
  return {
    pool: 'chat',
    at: Date.UTC(2026, 0, 2, 3, 4, 5),
    workers,
    producers: [],
    deadLetters: 0,
    limits: {},
    ...fields,
  }
}

describe('renderFrame', () => {
  it('draws every worker with its bar, state and counters within 80 columns', () => {
    const lines = renderFrame({
      snapshot: snapshot(
        [
          worker('gpu-box-with-a-very-long-hostname-123456-1', {
            inflight: 8,
            queueLen: 28,
            processed: 1234,
          }),
          worker('b-2', { state: 'cooling', coolingMs: 11_200 }),
          worker('c-3', { state: 'draining', inflight: 2 }),
          worker('d-4', { alive: false }),
          worker('e-5', { breaker: 'open', breakerMs: 4_000, errors: 7 }),
        ],
        { deadLetters: 3, limits: { rate: { limit: 100, periodMs: 1_000, burst: 10 } } },
      ),
      sort: 'load',
      columns: 80,
      rows: 24,
      hasKeys: true,
    })
    expect(lines.every((l) => l.length <= 80)).toBe(true)
    expect(lines[0]).toBe('hedgeyard top   pool chat   03:04:05 UTC')
    expect(lines[1]).toBe('workers 4/5 alive   jobs/s -   errors -   dead letters 3')
    expect(lines).toContain('quotas   rate 100/s burst 10')
    const row = (id: string) => lines.find((l) => l.includes(id)) ?? ''
    // 8 running and 28 queued of 72: a ninth of the bar runs, under half of it is taken.
    expect(row('gpu-box')).toMatch(/^gpu-box-w~123456-1 active\s+\[##=======\.+\]\s+8\/28\/72\s+1234\s+0$/)
    expect(row('b-2')).toContain('cooling 12s')
    expect(row('c-3')).toContain('draining')
    expect(row('d-4')).toContain('DEAD')
    expect(row('e-5')).toContain('breaker 4s')
    // The key help on the last row of the terminal.
    expect(lines).toHaveLength(24)
    expect(lines.at(-1)).toBe('sort: load   keys: l load  n name  e errors  q quit')
  })

  it('fits the rows of the terminal and says how many workers it left out', () => {
    const workers = Array.from({ length: 30 }, (_, i) =>
      worker(`w-${String(i).padStart(2, '0')}`, { inflight: i % 9 }),
    )
    const lines = renderFrame({
      snapshot: snapshot(workers),
      sort: 'name',
      columns: 80,
      rows: 12,
      hasKeys: true,
    })
    expect(lines).toHaveLength(12)
    expect(lines.at(-2)).toBe('+24 more')
    expect(lines[4]?.startsWith('w-00 ')).toBe(true)
    // Not a terminal: every worker, no key help.
    const all = renderFrame({ snapshot: snapshot(workers), sort: 'name', columns: 80 })
    expect(all.filter((l) => l.startsWith('w-'))).toHaveLength(30)
    expect(all.some((l) => l.startsWith('sort:'))).toBe(false)
  })

  it('cuts, never wraps, on a narrow terminal, and prints no control character from Redis', () => {
    const lines = renderFrame({
      snapshot: snapshot(
        [worker('e\u001b[2J', { state: 'weird\nstate', inflight: 3, queueLen: 1, capacity: 8 })],
        { pool: 'p' },
      ),
      sort: 'load',
      columns: 40,
      rows: 10,
    })
    expect(lines.every((l) => l.length <= 40)).toBe(true)
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for them
    expect(lines.join('\n')).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/)
    expect(lines.some((l) => /^e\?\[2J +weird\?state +\[#=+\.*\] +3\/1\/8$/.test(l))).toBe(true)
  })

  it('reads hostile numbers as 0', () => {
    const lines = renderFrame({
      snapshot: snapshot([
        worker('w', { inflight: Number.NaN, capacity: -5, processed: Number.POSITIVE_INFINITY }),
      ]),
      sort: 'load',
      columns: 80,
    })
    expect(lines.find((l) => l.startsWith('w '))).toMatch(/ 0\/0\/0\s+0\s+0$/)
  })

  it("shows the producers' worst p50 and p99", () => {
    const producer = (producerId: string, p50: number | undefined, p99: number | undefined) =>
      ({ producerId, latencyP50Ms: p50, latencyP99Ms: p99 }) as PoolSnapshot['producers'][number]
    const lines = renderFrame({
      snapshot: snapshot([], {
        producers: [producer('a', 12, 250), producer('b', 30, 90), producer('c', undefined, undefined)],
      }),
      sort: 'load',
      columns: 80,
    })
    expect(lines[2]).toBe('producers 3   p50 30ms   p99 250ms   (worst producer)')
    expect(lines).toContain("no workers registered in pool 'chat'")
  })
})

describe('sortWorkers', () => {
  const ws = [
    worker('a', { inflight: 1, capacity: 10, errors: 5 }),
    worker('b', { inflight: 9, queueLen: 9, capacity: 100, errors: 1 }),
    worker('c', { inflight: 8, capacity: 8, errors: 5 }),
  ]
  it('orders by load relative to capacity, by name, or by errors', () => {
    expect(sortWorkers(ws, 'load').map((w) => w.workerId)).toEqual(['c', 'b', 'a'])
    expect(sortWorkers(ws, 'name').map((w) => w.workerId)).toEqual(['a', 'b', 'c'])
    expect(sortWorkers(ws, 'errors').map((w) => w.workerId)).toEqual(['a', 'c', 'b'])
  })
})

describe('poolRates', () => {
  it('takes jobs/s and the error rate from the change in the counters, by worker', () => {
    const before = snapshot([worker('a', { processed: 100, errors: 1 }), worker('gone', { processed: 500 })])
    const after = snapshot([worker('a', { processed: 130, errors: 4 }), worker('new', { processed: 10 })], {
      at: before.at + 2_000,
    })
    // 30 more on a, 10 on a worker that joined; the one that left takes nothing away.
    expect(poolRates(before, after)).toEqual({ jobsPerSecond: 20, errorRatio: 3 / 40 })
    expect(poolRates(undefined, after)).toBeUndefined()
    expect(poolRates(after, after)).toBeUndefined()
  })
})

describe('format', () => {
  it('draws running, queued and free capacity', () => {
    expect(loadBar(2, 2, 8, 10)).toBe('[##==....]')
    expect(loadBar(1, 0, 1000, 10)).toBe('[#.......]')
    expect(loadBar(20, 0, 8, 10)).toBe('[########]')
    expect(loadBar(0, 0, 0, 6)).toBe('[    ]')
  })
  it('keeps both ends of a long id', () => {
    expect(fitMiddle('host-1234567890-42', 11)).toBe('host-~90-42')
  })
})
