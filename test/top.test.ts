import { execFile } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
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
import { openTerminal, type Terminal } from '@hedgeyard/testing/tmux'
import { watchedPool } from '@hedgeyard/testing/watched-pool'
import { Dispatcher, drainWorkers, startWorkers } from 'hedgeyard'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const ARTIFACTS = join(dirname(fileURLToPath(import.meta.url)), '../artifacts')
const c = client()
const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {})
})
afterAll(() => c.disconnect())

/** The screen row of a worker (its id starts the row), or undefined when it is not shown. */
function rowOf(screen: string, workerId: string): string | undefined {
  return screen.split('\n').find((line) => line.startsWith(`${workerId} `))
}

/** The screen once `test` holds of it; a timeout shows the last screen. */
async function screenWhen(
  term: Terminal,
  test: (screen: string) => boolean,
  timeoutMs = 10_000,
): Promise<string> {
  let last = ''
  try {
    await eventually(async () => {
      last = await term.screen()
      return test(last)
    }, timeoutMs)
  } catch (err) {
    throw new Error(`${(err as Error).message}; the screen was:\n${last}`)
  }
  return last
}

describe('hedgeyard top', () => {
  it('shows workers by load in 80x24 as they come, drain, cool down and leave; q quits with 0', async () => {
    const pool = uniquePool('top')
    const ref = { redis: redisUrl(), pool }
    // top-cool-* answers like an upstream out of quota (429, retry in 2 min): it cools down.
    // `hold` jobs wait for the test to release them, so a worker can be caught running one.
    const {
      start,
      dispatcher: d,
      jobs,
      worker: metrics,
      release,
    } = watchedPool({ pool, coolPrefix: 'top-cool', concurrency: 2, queueCapacity: 8, cleanups })

    // One job held on the worker that will drain, so it stays draining until the job ends.
    await start('top-drain', 1)
    jobs.push(d.submit({ hold: true }, { timeoutMs: 60_000 }).catch((err) => err))
    await eventually(async () => (await metrics('top-drain-1'))?.inflight === 1)
    // The cooling worker is the least loaded now: the next job goes to it, and it cools down.
    await start('top-cool', 1)
    jobs.push(d.submit({}, { timeoutMs: 10_000 }).catch(() => 'failed, as its 429 says'))
    await eventually(async () => ((await metrics('top-cool-1'))?.coolingMs ?? 0) > 0)
    const busy = await start('top-busy', 2)
    // More held jobs than the workers run at once: some wait queued.
    // Some are handed to the process worker when the drain starts, and lost with it when it is killed.
    for (let i = 0; i < 11; i++)
      jobs.push(d.submit({ hold: true }, { timeoutMs: 60_000 }).catch((err) => err))
    const other: WorkerProcess = await spawnWorker({ pool, handler: 'echo.js', idPrefix: 'top-proc' })
    cleanups.push(() => other.stop('SIGKILL'))

    const term: Terminal = await openTerminal(
      [process.execPath, CLI, 'top', '--redis', redisUrl(), '--pool', pool],
      { columns: 80, rows: 24 },
    )
    cleanups.push(() => term.close())
    let screen = await screenWhen(term, (s) =>
      ['top-drain-1', 'top-cool-1', 'top-busy-1', 'top-busy-2', 'top-proc-1'].every((id) => rowOf(s, id)),
    )
    expect(screen).toContain(`pool ${pool}`)
    expect(screen).toMatch(/workers 5\/5 alive/)
    expect(rowOf(screen, 'top-cool-1')).toMatch(/ cooling \d+s /)
    // Sorted by load: the busy workers (2 held jobs running, more queued, of 2 + 8) above the idle one.
    const order = screen.split('\n').map((l) => l.split(' ')[0])
    expect(order.indexOf('top-busy-1')).toBeLessThan(order.indexOf('top-proc-1'))
    expect(order.indexOf('top-busy-2')).toBeLessThan(order.indexOf('top-proc-1'))
    expect(rowOf(screen, 'top-busy-1')).toMatch(/ active +\[#+=+\.+\] +2\/[1-8]\/10 /)
    expect(rowOf(screen, 'top-busy-2')).toMatch(/ active +\[#+=+\.+\] +2\/[1-8]\/10 /)
    expect(rowOf(screen, 'top-proc-1')).toMatch(/ active +\[\.+\] +0\/0\/72 /)

    // A producer that ran quick jobs reports its latencies when it closes.
    const quick = new Dispatcher({ redis: redisUrl(), pool })
    for (let i = 0; i < 20; i++) await quick.submit({}, { timeoutMs: 10_000 })
    await quick.close()
    await screenWhen(term, (s) => /^producers \d+ +p50 \d+ms +p99 \d+ms/m.test(s))

    await drainWorkers(ref, ['top-drain-1'])
    screen = await screenWhen(term, (s) => rowOf(s, 'top-drain-1')?.includes(' draining ') === true)
    expect(screen.split('\n').every((line) => line.length <= 80)).toBe(true)
    mkdirSync(ARTIFACTS, { recursive: true })
    writeFileSync(join(ARTIFACTS, 'top.txt'), screen)

    // A worker process killed outright: gone once its lease ends and a live worker rescues it.
    await other.stop('SIGKILL')
    // Workers that close leave once their jobs end; so does the draining one.
    release()
    await busy.close()
    screen = await screenWhen(
      term,
      (s) => ['top-proc-1', 'top-busy-1', 'top-busy-2', 'top-drain-1'].every((id) => !rowOf(s, id)),
      20_000,
    )
    expect(rowOf(screen, 'top-cool-1')).toBeDefined()
    expect(screen).toMatch(/workers 1\/1 alive/)

    await term.keys('n')
    await screenWhen(term, (s) => s.includes('sort: name'))
    await term.keys('q')
    expect(await eventually(async () => (await term.exitCode()) !== undefined)).toBe(true)
    expect(await term.exitCode()).toBe(0)
    // The shell's screen is back: top's frame was on the alternate screen.
    expect(await term.screen()).not.toContain('hedgeyard top')
  })

  it('prints one frame and exits where stdout is not a terminal', async () => {
    const pool = uniquePool('top-once')
    const group = await startWorkers({
      redis: redisUrl(),
      pool,
      handler: () => 'ok',
      idPrefix: 'once',
      count: 2,
    })
    cleanups.push(async () => {
      await group.close()
      await cleanupPool(c, pool)
    })
    const { stdout } = await run(process.execPath, [CLI, 'top', '--redis', redisUrl(), '--pool', pool])
    const lines = stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(new RegExp(`^hedgeyard top   pool ${pool}   \\d\\d:\\d\\d:\\d\\d UTC$`))
    expect(lines[1]).toBe('workers 2/2 alive   jobs/s -   errors -   dead letters 0')
    expect(lines.filter((l) => /^once-[12] +active +\[\.+\] +0\/0\/72 +0 +0$/.test(l))).toHaveLength(2)
    expect(lines.every((l) => l.length <= 80)).toBe(true)
  })
})
