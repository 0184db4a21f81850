import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  CLI,
  eventually,
  FIXTURES,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher } from 'hedgeyard'
import { afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const children: ChildProcess[] = []
const running: WorkerProcess[] = []
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL')
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
})

/** A log line of a worker process: pino's JSON (stdout is not a terminal here). */
type LogLine = Record<string, unknown> & { level: number; msg: string }

/** `hedgeyard worker` at HEDGEYARD_LOG_LEVEL=debug, and its log lines so far. */
async function debugWorker(
  pool: string,
  idPrefix: string,
): Promise<{ lines: () => LogLine[]; raw: () => string }> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'worker',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      '--handler',
      join(FIXTURES, 'upstream.js'),
      '--id-prefix',
      idPrefix,
    ],
    { env: { ...process.env, HEDGEYARD_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.push(child)
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  child.stderr?.on('data', (d) => {
    out += d
  })
  await eventually(() => {
    if (child.exitCode !== null) throw new Error(`worker exited early:\n${out}`)
    return out.includes('workers started')
  }, 15_000)
  const lines = () =>
    out
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine)
  return { lines, raw: () => out }
}

describe('worker logs at HEDGEYARD_LOG_LEVEL=debug', () => {
  it('each job at debug, a failure at warn, a cooldown, a rescue and a drain at info; never a payload', async () => {
    const pool = uniquePool('worker-logs')
    // A worker that dies holding a job, for the logged worker to rescue.
    const doomed = await spawnWorker({
      pool,
      handler: 'upstream.js',
      idPrefix: 'doomed',
      extraArgs: ['--lease-ms', '300'],
    })
    running.push(doomed)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    try {
      const rescued = d.submit({ delayMs: 1_000, secret: 's3cr3t-rescued' }, { timeoutMs: 60_000 })
      rescued.catch(() => {})
      await eventually(async () => (await d.workerMetrics())[0]?.inflight === 1)
      await doomed.stop('SIGKILL')
      const w = await debugWorker(pool, 'logged')
      const find = (msg: string) => w.lines().find((l) => l.msg === msg)
      await eventually(() => find('rescued the jobs of dead workers'))

      const ok = (await d.submit({ prompt: 's3cr3t-ok' })) as { jobId: string }
      await expect(d.submit({ fail: 'model overloaded', secret: 's3cr3t-failed' })).rejects.toMatchObject({
        code: 'HANDLER_ERROR',
      })
      // The upstream's 429 reaches its caller as RATE_LIMITED.
      await expect(d.submit({ rateLimitedMs: 200, secret: 's3cr3t-429' })).rejects.toMatchObject({
        code: 'RATE_LIMITED',
      })
      const drained = await run(process.execPath, [
        CLI,
        'drain',
        '--redis',
        redisUrl(),
        '--pool',
        pool,
        'logged-1',
      ])
      expect(drained.stdout).toBe('draining logged-1\n')
      await eventually(() => find('workers stopped'), 40_000)

      expect(find('rescued the jobs of dead workers')).toMatchObject({ level: 30, moved: 1 })
      expect(w.lines().find((l) => l.msg === 'job done' && l.jobId === ok.jobId)).toMatchObject({
        level: 20,
        workerId: 'logged-1',
        outcome: 'ok',
        attempt: 1,
      })
      const failed = w.lines().filter((l) => l.msg === 'job failed')
      expect(failed).toEqual([
        expect.objectContaining({
          level: 40,
          workerId: 'logged-1',
          jobId: expect.any(String),
          error: { code: 'HANDLER_ERROR', name: 'RangeError', message: 'model overloaded' },
        }),
        expect.objectContaining({
          level: 40,
          workerId: 'logged-1',
          error: { code: 'HANDLER_ERROR', name: 'Error', message: '429 Too Many Requests', status: 429 },
        }),
      ])
      expect(find('upstream rate limit: cooling down')).toMatchObject({
        level: 30,
        workerId: 'logged-1',
        jobId: failed[1]?.jobId,
        retryAfterMs: 200,
      })
      expect(find('asked to drain')).toMatchObject({ level: 30, workerIds: ['logged-1'] })
      expect(w.raw()).not.toContain('s3cr3t')
    } finally {
      await d.close()
    }
  })

  it('the debug line of a job says how long it ran', async () => {
    const pool = uniquePool('worker-logs-duration')
    const w = await debugWorker(pool, 'timed')
    const d = new Dispatcher({ redis: redisUrl(), pool })
    try {
      const { jobId } = (await d.submit({ delayMs: 50 })) as { jobId: string }
      const line = await eventually(() => w.lines().find((l) => l.msg === 'job done' && l.jobId === jobId))
      expect(line?.durationMs).toBeGreaterThanOrEqual(50)
    } finally {
      await d.close()
    }
  })
})
