import { cleanupPool, client, eventually, gate, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { parsePromText, sumOf } from '@hedgeyard/testing/prom-text'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { cancelJob } from '../admin/cancel-job.js'
import { getJob } from '../admin/get-job.js'
import type { Handler } from '../consumer/run-job.js'
import { prometheusMetrics } from '../prometheus.js'
import { cellJoinKey, poolKeys } from '../protocol/keys.js'
import { CellDispatcher } from './cell-dispatcher.js'
import { sessionCell } from './cell-pools.js'
import { inspectCells } from './inspect-cells.js'
import { type CellWorkerGroup, startCellWorkers } from './start-cell-workers.js'

const c = client()
const closers: (() => Promise<void> | void)[] = []
const pools: [string, number][] = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  for (const [pool, cells] of pools.splice(0)) {
    for (let i = 0; i < cells; i++) await cleanupPool(c, `${pool}.${i}`)
  }
})
afterAll(() => c.disconnect())

/** A pool of `cells` cells, cleaned up after the test. */
function cellsPool(label: string, cells: number): string {
  const pool = uniquePool(label)
  pools.push([pool, cells])
  return pool
}

/** Starts `groups` worker groups one after another, each joining the cell with the fewest workers. */
async function startGroups(pool: string, cells: number, groups: number, handler: Handler, concurrency = 8) {
  const started: CellWorkerGroup[] = []
  for (let i = 0; i < groups; i++) {
    const idPrefix = `g${i}-${process.pid}`
    const group = await startCellWorkers({ redis: redisUrl(), pool, cells, handler, concurrency, idPrefix })
    closers.push(() => group.close())
    started.push(group)
  }
  // workerId -> the cell it joined, to tell from a result where its job ran.
  const cellOf = new Map(started.flatMap((g) => g.workerIds.map((id) => [id, g.cell] as const)))
  return { started, cellOf }
}

function dispatcher(
  pool: string,
  cells: number,
  extra: { metrics?: ReturnType<typeof prometheusMetrics> } = {},
) {
  const d = new CellDispatcher({ redis: redisUrl(), pool, cells, ...extra })
  closers.push(() => d.close())
  return d
}

const whoRuns: Handler = async (_req, ctx) => ctx.workerId

describe('cells', () => {
  it('workers join the cell with the fewest live workers, and inspect shows each cell', async () => {
    const pool = cellsPool('cells-join', 4)
    const { started } = await startGroups(pool, 4, 8, whoRuns)
    const perCell = [0, 0, 0, 0]
    for (const g of started) perCell[g.cell] = (perCell[g.cell] ?? 0) + 1
    expect(perCell).toEqual([2, 2, 2, 2])
    expect(started[0]?.cellPool).toBe(`${pool}.${started[0]?.cell}`)

    const view = await inspectCells({ redis: redisUrl(), pool, cells: 4 })
    expect(view.map((v) => v.pool)).toEqual([0, 1, 2, 3].map((i) => `${pool}.${i}`))
    expect(view.map((v) => v.workers.filter((w) => w.alive).length)).toEqual([2, 2, 2, 2])
  })

  it('workers that start at the same moment join one at a time, so they spread evenly too', async () => {
    const pool = cellsPool('cells-rush', 3)
    const groups = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        startCellWorkers({
          redis: redisUrl(),
          pool,
          cells: 3,
          handler: whoRuns,
          concurrency: 2,
          idPrefix: `rush${i}-${process.pid}`,
        }),
      ),
    )
    for (const g of groups) closers.push(() => g.close())
    const perCell = [0, 0, 0]
    for (const g of groups) perCell[g.cell] = (perCell[g.cell] ?? 0) + 1
    expect(perCell).toEqual([2, 2, 2])
    // The join key is gone once they have joined: the next process need not wait for it.
    expect(await c.exists(cellJoinKey(poolKeys('hy', `${pool}.0`)))).toBe(0)
  })

  it('keeps a session in one cell across submits and producers', async () => {
    const pool = cellsPool('cells-session', 4)
    const { cellOf } = await startGroups(pool, 4, 4, whoRuns)
    const first = dispatcher(pool, 4)
    const second = dispatcher(pool, 4)
    const seen = new Map<string, Set<number>>()
    const cellsUsed = new Set<number>()
    for (let s = 0; s < 12; s++) {
      const session = `user-${s}`
      for (let i = 0; i < 6; i++) {
        const d = i % 2 === 0 ? first : second
        const cell = cellOf.get((await d.submit({}, { session })) as string) as number
        if (!seen.has(session)) seen.set(session, new Set())
        seen.get(session)?.add(cell)
        cellsUsed.add(cell)
      }
      expect([...(seen.get(session) ?? [])]).toEqual([sessionCell(session, 4)])
    }
    // Twelve sessions do not all hash to one cell: the sessions themselves are spread.
    expect(cellsUsed.size).toBeGreaterThan(1)
  })

  it('spreads requests without a session evenly over equally loaded cells', async () => {
    const pool = cellsPool('cells-spread', 4)
    const handler: Handler = async (_req, ctx) => {
      await new Promise((r) => setTimeout(r, 2))
      return ctx.workerId
    }
    const { cellOf } = await startGroups(pool, 4, 4, handler)
    const d = dispatcher(pool, 4)
    const perCell = [0, 0, 0, 0]
    for (let batch = 0; batch < 50; batch++) {
      const ids = await Promise.all(Array.from({ length: 8 }, () => d.submit({})))
      for (const id of ids) {
        const cell = cellOf.get(id as string) as number
        perCell[cell] = (perCell[cell] ?? 0) + 1
      }
    }
    // 400 requests, 100 per cell in share: none gets more than half as much again, or less than half.
    for (const n of perCell) {
      expect(n).toBeGreaterThan(50)
      expect(n).toBeLessThan(150)
    }
  })

  it('sends requests without a session to the less loaded cell when one is busy', async () => {
    const pool = cellsPool('cells-busy', 2)
    const hold = gate()
    const handler: Handler<{ hold?: boolean }> = async (req, ctx) => {
      if (req.hold) await hold.wait
      return ctx.workerId
    }
    const { cellOf } = await startGroups(pool, 2, 2, handler as Handler, 2)
    const d = dispatcher(pool, 2)
    // Two sessions of cell 0 fill its one worker's two slots.
    const sessions = Array.from({ length: 50 }, (_, i) => `s-${i}`).filter((s) => sessionCell(s, 2) === 0)
    const held = sessions.slice(0, 2).map((session) => d.submit({ hold: true }, { session }))
    await eventually(async () => {
      const [cell0] = await inspectCells({ redis: redisUrl(), pool, cells: 2 })
      return cell0?.workers[0]?.inflight === 2
    })
    const perCell = [0, 0]
    for (let i = 0; i < 30; i++) {
      const cell = cellOf.get((await d.submit({})) as string) as number
      perCell[cell] = (perCell[cell] ?? 0) + 1
    }
    expect(perCell).toEqual([0, 30])
    hold.open()
    await Promise.all(held)
  })

  it('resumes, reads and cancels a streamed job by id from another producer, whatever its cell', async () => {
    const pool = cellsPool('cells-stream', 3)
    const hold = gate()
    const handler = async function* () {
      yield 'first'
      await hold.wait
      return 'done'
    }
    await startGroups(pool, 3, 3, handler as unknown as Handler)
    const d = dispatcher(pool, 3)
    const other = dispatcher(pool, 3)
    // A session of the last cell: a producer trying only cell 0 would not find the job.
    const session = Array.from({ length: 50 }, (_, i) => `s-${i}`).find((s) => sessionCell(s, 3) === 2)
    const stream = d.stream<string, string>({}, { session: session as string })
    await stream.queued
    expect(await other.findJob(stream.jobId)).toBe(2)
    expect(await other.getJob(stream.jobId)).toEqual({ status: 'pending' })

    const resumed = other.resume<string, string>(stream.jobId)
    const chunks: string[] = []
    for await (const chunk of resumed) {
      chunks.push(chunk.data)
      break
    }
    expect(chunks).toEqual(['first'])
    // Leaving the resumed stream early cancelled the job in its cell.
    await expect(stream.result).rejects.toMatchObject({ code: 'CANCELLED' })
    await expect(other.getJob(stream.jobId)).resolves.toMatchObject({ status: 'failed' })
    hold.open()
  })

  it('cancels a job by id in whichever cell runs it', async () => {
    const pool = cellsPool('cells-cancel', 3)
    const hold = gate()
    const handler: Handler = async (_req, ctx) => {
      await Promise.race([hold.wait, new Promise((r) => ctx.signal.addEventListener('abort', r))])
      return 'ran'
    }
    await startGroups(pool, 3, 3, handler)
    const d = dispatcher(pool, 3)
    const other = dispatcher(pool, 3)
    const session = Array.from({ length: 50 }, (_, i) => `s-${i}`).find((s) => sessionCell(s, 3) === 1)
    const stream = d.stream({}, { session: session as string })
    await stream.queued
    expect(await other.cancel(stream.jobId)).toBe('cancelled')
    await expect(stream.result).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(await other.cancel(stream.jobId)).toBe('finished')
    expect(await other.cancel('01NOSUCHJOB')).toBe('unknown')
    const missing = other.resume('01NOSUCHJOB')
    await expect(missing.result).rejects.toMatchObject({ code: 'NOT_FOUND' })
    hold.open()
  })

  it('getJob and cancelJob with cells find a job in whichever cell it is', async () => {
    const pool = cellsPool('cells-admin', 3)
    const hold = gate()
    const handler: Handler = async (_req, ctx) => {
      await Promise.race([hold.wait, new Promise((r) => ctx.signal.addEventListener('abort', r))])
      return 'ran'
    }
    await startGroups(pool, 3, 3, handler)
    const d = dispatcher(pool, 3)
    const ref = { redis: redisUrl(), pool, cells: 3 }
    const session = Array.from({ length: 50 }, (_, i) => `s-${i}`).find((s) => sessionCell(s, 3) === 2)
    const stream = d.stream({}, { session: session as string })
    await stream.queued
    expect(await getJob(ref, stream.jobId)).toEqual({ status: 'pending' })
    // Without cells the logical pool's name is a pool of its own, which holds no job.
    expect(await getJob({ redis: redisUrl(), pool }, stream.jobId)).toEqual({ status: 'unknown' })
    expect(await cancelJob({ redis: redisUrl(), pool }, stream.jobId)).toBe('unknown')
    expect(await cancelJob(ref, stream.jobId)).toBe('cancelled')
    await expect(stream.result).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(await getJob(ref, stream.jobId)).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } })
    expect(await cancelJob(ref, stream.jobId)).toBe('finished')
    expect(await cancelJob(ref, '01NOSUCHJOB')).toBe('unknown')
    hold.open()
    const done = d.stream({}, { session: session as string })
    await done.result
    expect(await getJob(ref, done.jobId)).toEqual({ status: 'completed', result: 'ran' })
    await expect(getJob({ ...ref, cells: 0 }, done.jobId)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  })

  it('labels the metrics of each cell with the logical pool and the cell', async () => {
    const pool = cellsPool('cells-metrics', 2)
    const metrics = prometheusMetrics()
    await startGroups(pool, 2, 2, whoRuns)
    const d = dispatcher(pool, 2, { metrics })
    const sessions = ['a', 'b', 'c', 'd', 'e', 'f']
    for (const session of sessions) await d.submit({}, { session })
    const e = parsePromText(await metrics.registry.metrics())
    for (const cell of [0, 1]) {
      const expected = sessions.filter((s) => sessionCell(s, 2) === cell).length
      expect(sumOf(e, 'hedgeyard_submits_total', { pool, cell: String(cell), outcome: 'ok' })).toBe(expected)
    }
  })

  it('refuses a cell count out of range, naming the option', async () => {
    expect(() => new CellDispatcher({ redis: redisUrl(), pool: 'p', cells: 0 })).toThrow(
      /cells must be an integer between 1 and 1024 \(got 0\)/,
    )
    await expect(
      startCellWorkers({ redis: redisUrl(), pool: 'p', cells: 1025, handler: whoRuns }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringMatching(/^cells must be/) })
  })
})
