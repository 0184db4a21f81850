import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
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
import { CellDispatcher, sessionCell } from 'hedgeyard'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

// Cells (issue 18, item 5) across processes: `hedgeyard worker --cells`, `submit`, `resume`,
// `cancel`, `result` and `inspect` with --cells, each its own process.

const run = promisify(execFile)
const CELLS = 3
const pool = uniquePool('cells-cli')
const workers: WorkerProcess[] = []
const c = client()

async function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      [CLI, ...args, '--redis', redisUrl(), '--pool', pool, '--cells', String(CELLS)],
      { env: { ...process.env, COLUMNS: '200' } },
    )
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

/** A session whose cell is `cell`. */
function sessionOf(cell: number): string {
  return Array.from({ length: 100 }, (_, i) => `user-${i}`).find(
    (s) => sessionCell(s, CELLS) === cell,
  ) as string
}

beforeAll(async () => {
  // One after another: each joins the cell with the fewest live workers, so one lands in each.
  for (let i = 0; i < CELLS; i++) {
    workers.push(
      await spawnWorker({
        pool,
        handler: 'stream.js',
        idPrefix: `p${i}`,
        extraArgs: ['--cells', String(CELLS)],
      }),
    )
  }
})

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop('SIGKILL')))
  for (let i = 0; i < CELLS; i++) await cleanupPool(c, `${pool}.${i}`)
  c.disconnect()
})

describe('cells across processes', () => {
  it('puts one worker process in each cell, and inspect shows the logical pool and its cells', async () => {
    const text = await cli('inspect')
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`pool '${pool}': ${CELLS} cells, ${CELLS} live workers`)
    const json = JSON.parse((await cli('inspect', '--json')).stdout) as {
      pool: string
      cells: { cell: number; pool: string; workers: { alive: boolean }[] }[]
    }
    expect(json.pool).toBe(pool)
    expect(json.cells.map((cell) => cell.pool)).toEqual([0, 1, 2].map((i) => `${pool}.${i}`))
    expect(json.cells.map((cell) => cell.workers.filter((w) => w.alive).length)).toEqual([1, 1, 1])
  })

  it('top --cells shows every cell as one pool, each worker with its cell', async () => {
    const json = JSON.parse((await cli('inspect', '--json')).stdout) as {
      cells: { cell: number; workers: { workerId: string }[] }[]
    }
    const top = await cli('top', '--once')
    expect(top.code, top.stderr).toBe(0)
    expect(top.stdout).toContain(`pool ${pool} (${CELLS} cells)`)
    expect(top.stdout).toContain(`workers ${CELLS}/${CELLS} alive`)
    for (const cell of json.cells) {
      for (const w of cell.workers) expect(top.stdout).toContain(`${cell.cell}/${w.workerId}`)
    }
  })

  it('keeps a session in its cell across producer processes', async () => {
    const json = JSON.parse((await cli('inspect', '--json')).stdout) as {
      cells: { cell: number; workers: { workerId: string }[] }[]
    }
    const cellOf = new Map(json.cells.flatMap((cell) => cell.workers.map((w) => [w.workerId, cell.cell])))
    for (const session of ['alice', 'bob', 'carol', 'dave']) {
      const ran: number[] = []
      for (let i = 0; i < 2; i++) {
        const out = await cli('submit', '--session', session, '{"chunks":1}')
        expect(out.code, out.stderr).toBe(0)
        ran.push(cellOf.get((JSON.parse(out.stdout) as { workerId: string }).workerId) as number)
      }
      expect(ran).toEqual([sessionCell(session, CELLS), sessionCell(session, CELLS)])
    }
  })

  it('resumes, reads and cancels a streamed job by id from another process, in whichever cell it is', async () => {
    const d = new CellDispatcher({ redis: redisUrl(), pool, cells: CELLS })
    try {
      const stream = d.stream({ chunks: 3, everyMs: 200 }, { session: sessionOf(2) })
      await stream.queued
      const resumed = await cli('resume', stream.jobId)
      expect(resumed.code, resumed.stderr).toBe(0)
      const lines = resumed.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l))
      expect(lines.map((l) => l.seq ?? 'result')).toEqual([1, 2, 3, 'result'])
      await stream.result
      const result = await cli('result', stream.jobId)
      expect(JSON.parse(result.stdout)).toMatchObject({ chunks: 3 })

      const hanging = d.stream({ chunks: 1, hang: true }, { session: sessionOf(1) })
      await hanging.queued
      await eventually(async () => (await d.getJob(hanging.jobId)).status === 'pending')
      const cancelled = await cli('cancel', hanging.jobId)
      expect(cancelled.stdout).toContain(`cancelled ${hanging.jobId}`)
      await expect(hanging.result).rejects.toMatchObject({ code: 'CANCELLED' })
    } finally {
      await d.close()
    }
  })

  it('refuses --cells out of range, naming the flag', async () => {
    const out = await cli('inspect', '--cells', '0')
    expect(out.code).not.toBe(0)
    expect(out.stderr).toContain('--cells must be a whole number from 1 to 1024')
  })
})

describe('worker processes started at the same moment', () => {
  const joinPool = uniquePool('cells-join-at-once')
  const started: WorkerProcess[] = []
  afterAll(async () => {
    await Promise.all(started.map((w) => w.stop('SIGKILL')))
    for (let i = 0; i < CELLS; i++) await cleanupPool(c, `${joinPool}.${i}`)
  })

  it('join the cells in turn: six processes for three cells, two in each', async () => {
    const spawning = Array.from({ length: 2 * CELLS }, (_, i) =>
      spawnWorker({
        pool: joinPool,
        handler: 'stream.js',
        idPrefix: `j${i}`,
        extraArgs: ['--cells', String(CELLS)],
      }),
    )
    started.push(...(await Promise.all(spawning)))
    const out = await run(process.execPath, [
      CLI,
      'inspect',
      '--json',
      '--redis',
      redisUrl(),
      '--pool',
      joinPool,
      '--cells',
      String(CELLS),
    ])
    const json = JSON.parse(out.stdout) as { cells: { workers: { alive: boolean }[] }[] }
    expect(json.cells.map((cell) => cell.workers.filter((w) => w.alive).length)).toEqual([2, 2, 2])
  })
})
