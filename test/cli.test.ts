import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import {
  CLI,
  client,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, poolKeys } from 'hedgeyard'
import { affinityKey, resultKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const c = client()
const running: WorkerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
})
afterAll(() => c.disconnect())

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('hedgeyard CLI', () => {
  it('limits set, show and clear a pool quota that a submit from another process then obeys', async () => {
    const pool = uniquePool('cli-limits')
    const env = { HEDGEYARD_REDIS_URL: redisUrl() }
    running.push(await spawnWorker({ pool, handler: 'echo.js' }))
    const set = await cli(
      ['limits', 'set', '--pool', pool, '--rate', '1/min', '--cost', '100000/min', '--cost-burst', '500'],
      env,
    )
    expect(set.stdout).toBe(
      `pool '${pool}' rate: 1/min, burst 1 requests\npool '${pool}' cost: 100000/min, burst 500 units\n`,
    )
    const shown = await cli(['limits', 'show', '--pool', pool, '--json'], env)
    expect(JSON.parse(shown.stdout)).toEqual({
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
      cost: { limit: 100_000, periodMs: 60_000, burst: 500 },
    })
    // One request a minute: the first goes, the second waits past its timeout.
    expect((await cli(['submit', '--pool', pool, '{"n":1}'], env)).code).toBe(0)
    const second = await cli(['submit', '--pool', pool, '--timeout', '300', '{"n":2}'], env)
    expect(second.code).toBe(1)
    expect(second.stderr).toMatch(/^error RATE_LIMITED: pool '.+' is over its quota; retry after \d+ ms\n$/)
    const bad = await cli(['limits', 'set', '--pool', pool, '--rate', '50/fortnight'], env)
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain('--rate must be <n>/<period>')
    expect((await cli(['limits', 'clear', '--pool', pool], env)).stdout).toBe(
      `pool '${pool}': quotas removed\n`,
    )
    expect((await cli(['submit', '--pool', pool, '{"n":3}'], env)).code).toBe(0)
  })

  it("limits set, show and clear a class of tenants' limits, which a producer in another process obeys", async () => {
    const pool = uniquePool('cli-class')
    const env = { HEDGEYARD_REDIS_URL: redisUrl() }
    running.push(await spawnWorker({ pool, handler: 'echo.js' }))
    const set = await cli(
      ['limits', 'set', '--pool', pool, '--key-class', 'free', '--rate', '1/min', '--concurrency', '4'],
      env,
    )
    expect(set.stdout).toBe(
      `pool '${pool}' class 'free' rate: 1/min, burst 1 requests per tenant\n` +
        `pool '${pool}' class 'free' concurrency: 4 jobs in flight per tenant\n`,
    )
    const shown = await cli(['limits', 'show', '--pool', pool, '--key-class', 'free', '--json'], env)
    expect(JSON.parse(shown.stdout)).toEqual({
      rate: { limit: 1, periodMs: 60_000, burst: 1 },
      concurrency: 4,
    })
    // The class's limits are not the pool's.
    expect((await cli(['limits', 'show', '--pool', pool], env)).stdout).toBe(`pool '${pool}' has no quotas\n`)
    const d = new Dispatcher({ redis: redisUrl(), pool })
    try {
      const tenant = { limitKey: 'key-1', limitClass: 'free', onRateLimited: 'reject' } as const
      await d.submit({ n: 1 }, tenant)
      await expect(d.submit({ n: 2 }, tenant)).rejects.toMatchObject({
        code: 'RATE_LIMITED',
        message: expect.stringMatching(
          /^tenant 'key-1' is over the quota of its class 'free'; retry after \d+ ms$/,
        ),
      })
      // Another tenant of the class has a quota of its own.
      await d.submit({ n: 3 }, { ...tenant, limitKey: 'key-2' })
      const cap = await cli(['limits', 'set', '--pool', pool, '--concurrency', '4'], env)
      expect(cap.code).toBe(1)
      expect(cap.stderr).toContain('--concurrency is a cap per tenant: give --key-class')
      const bad = await cli(['limits', 'set', '--pool', pool, '--key-class', 'a:b', '--rate', '1/s'], env)
      expect(bad.code).toBe(1)
      expect(bad.stderr).toContain('--key-class must be 1-64 characters')
      expect((await cli(['limits', 'clear', '--pool', pool, '--key-class', 'free'], env)).stdout).toBe(
        `pool '${pool}' class 'free': limits removed\n`,
      )
      expect((await cli(['limits', 'show', '--pool', pool, '--key-class', 'free'], env)).stdout).toBe(
        `pool '${pool}' class 'free' has no limits\n`,
      )
      await d.submit({ n: 4 }, tenant)
    } finally {
      await d.close()
    }
  })

  it('submit prints the result as JSON, with the session given', async () => {
    const pool = uniquePool('cli')
    const keys = poolKeys('hy', pool)
    running.push(await spawnWorker({ pool, handler: 'echo.js', count: 2 }))
    const out = await cli(['submit', '--pool', pool, '--session', 'user-42', '{"prompt":"hi"}'], {
      HEDGEYARD_REDIS_URL: redisUrl(),
    })
    expect(out.code).toBe(0)
    const res = JSON.parse(out.stdout)
    expect(res).toMatchObject({ echo: { prompt: 'hi' }, session: 'user-42', attempt: 1 })
    expect(await c.get(affinityKey(keys, 'user-42'))).toBe(res.workerId)
  })

  it('submit exits non-zero with the error code and message on failure', async () => {
    const pool = uniquePool('clifail')
    running.push(await spawnWorker({ pool, handler: 'echo.js' }))
    const failed = await cli(['submit', '--redis', redisUrl(), '--pool', pool, '{"fail":"quota exceeded"}'])
    expect(failed.code).not.toBe(0)
    expect(failed.stderr).toMatch(/^error HANDLER_ERROR: RangeError: quota exceeded/m)
    const badJson = await cli(['submit', '--redis', redisUrl(), '--pool', pool, '{nope'])
    expect(badJson.code).not.toBe(0)
    expect(badJson.stderr).toMatch(/^error INVALID_ARGUMENT: the request is not valid JSON/m)
    const noWorkers = await cli(['submit', '--redis', redisUrl(), '--pool', uniquePool('empty'), '1'])
    expect(noWorkers.stderr).toMatch(/^error NO_WORKERS: /m)
    const timeout = await cli([
      'submit',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      '--timeout',
      '100',
      '{"delayMs":2000}',
    ])
    // The producer's own deadline, or the worker's: the handler's signal aborted at the same moment.
    expect(timeout.stderr).toMatch(
      /^error TIMEOUT: (no result within 100 ms|the handler did not finish by the deadline)/m,
    )
  })

  it('inspect shows every worker with its metrics, as a table and as JSON', async () => {
    const pool = uniquePool('inspect')
    running.push(
      await spawnWorker({
        pool,
        handler: 'echo.js',
        count: 2,
        concurrency: 3,
        queueCapacity: 7,
        extraArgs: ['--prefetch', '2'],
      }),
    )
    await cli(['submit', '--redis', redisUrl(), '--pool', pool, '{"fail":"x"}'])
    const json = await cli(['inspect', '--redis', redisUrl(), '--pool', pool, '--json'])
    expect(json.code).toBe(0)
    const { workers } = JSON.parse(json.stdout) as { workers: Record<string, unknown>[] }
    expect(workers).toHaveLength(2)
    for (const w of workers)
      expect(w).toMatchObject({
        alive: true,
        state: 'active',
        capacity: 10,
        concurrency: 3,
        inflight: 0,
        queueLen: 0,
      })
    expect(workers.reduce((n, w) => n + (w.errors as number), 0)).toBe(1)
    const text = await cli(['inspect', '--redis', redisUrl(), '--pool', pool])
    expect(text.stdout).toMatch(/2 workers/)
    expect(text.stdout).toMatch(
      /worker\s+host\s+pid\s+alive\s+state\s+inflight\s+queued\s+capacity\s+concurrency\s+processed\s+errors/,
    )
  })

  it('dashboard refuses an address other than loopback without --insecure-no-auth', async () => {
    const open = await cli(['dashboard', '--redis', redisUrl(), '--pool', 'p', '--host', '0.0.0.0'])
    expect(open.code).toBe(1)
    expect(open.stderr).toMatch(
      /^error INVALID_ARGUMENT: refusing to serve the dashboard on 0\.0\.0\.0 without authentication/,
    )
    expect(open.stdout).toBe('')
  })

  it('inspect exits 3 when no worker is alive, and drain refuses a worker whose lease ended', async () => {
    const pool = uniquePool('abandoned')
    const empty = await cli(['inspect', '--redis', redisUrl(), '--pool', pool])
    expect(empty.code).toBe(3)
    expect(empty.stdout).toContain('has no registered workers')
    const w = await spawnWorker({
      pool,
      handler: 'echo.js',
      idPrefix: 'gone',
      extraArgs: ['--lease-ms', '300'],
    })
    expect((await cli(['inspect', '--redis', redisUrl(), '--pool', pool])).code).toBe(0)
    await w.stop('SIGKILL')
    await new Promise((r) => setTimeout(r, 500))
    const dead = await cli(['inspect', '--redis', redisUrl(), '--pool', pool, '--json'])
    expect(dead.code).toBe(3)
    expect(JSON.parse(dead.stdout).workers).toMatchObject([{ workerId: 'gone-1', alive: false }])
    const drain = await cli(['drain', '--redis', redisUrl(), '--pool', pool, 'gone-1', 'nobody-1'])
    expect(drain.code).toBe(1)
    expect(drain.stdout).toBe('')
    expect(drain.stderr).toContain('worker gone-1 is not alive (its lease ended)')
    expect(drain.stderr).toContain("no such worker in pool '")
  })

  it('worker logs a failed job at warn with its id and error, never its payload', async () => {
    const pool = uniquePool('joblog')
    const w = await spawnWorker({ pool, handler: 'echo.js' })
    running.push(w)
    const failed = await cli([
      'submit',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      '{"fail":"model overloaded","secret":"s3cr3t-payload"}',
    ])
    expect(failed.code).toBe(1)
    const line = w
      .output()
      .split('\n')
      .find((l) => l.includes('"msg":"job failed"'))
    expect(JSON.parse(line as string)).toMatchObject({
      level: 40,
      jobId: expect.any(String),
      attempt: 1,
      error: { code: 'HANDLER_ERROR', name: 'RangeError', message: 'model overloaded' },
    })
    expect(w.output()).not.toContain('s3cr3t-payload')
  })

  it('prints its version, reads a request from stdin, prints a stored result, and takes every worker option', async () => {
    expect((await cli(['--version'])).stdout).toBe('0.1.0\n')
    const pool = uniquePool('cli-result')
    const keys = poolKeys('hy', pool)
    running.push(
      await spawnWorker({
        pool,
        handler: 'echo.js',
        extraArgs: ['--result-ttl-ms', '5000', '--block-ms', '200'],
      }),
    )
    const child = spawn(process.execPath, [CLI, 'submit', '--redis', redisUrl(), '--pool', pool, '-'])
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
    })
    child.stdin.end('{"prompt":"from stdin"}')
    await new Promise((r) => child.on('exit', r))
    const reply = JSON.parse(out) as { echo: unknown; jobId: string }
    expect(reply.echo).toEqual({ prompt: 'from stdin' })
    // The worker's --result-ttl-ms reached its results.
    const ttl = await c.pttl(resultKey(keys, reply.jobId))
    expect(ttl).toBeGreaterThan(0)
    expect(ttl).toBeLessThanOrEqual(5_000)
    const stored = await cli(['result', '--redis', redisUrl(), '--pool', pool, reply.jobId])
    expect(JSON.parse(stored.stdout)).toEqual(reply)
    const unknown = await cli(['result', '--redis', redisUrl(), '--pool', pool, 'no-such-job'])
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('error NOT_FOUND')
  })

  it('worker refuses a module without a handler, naming what it found', async () => {
    const out = await cli([
      'worker',
      '--redis',
      redisUrl(),
      '--pool',
      uniquePool('nohandler'),
      '--handler',
      'package.json',
    ])
    expect(out.code).not.toBe(0)
    expect(out.stderr).toMatch(/error/)
  })
})

describe('hedgeyard CLI, hedging', () => {
  it('submit --hedge-delay sends a copy to another worker, and inspect shows the producer counters', async () => {
    const pool = uniquePool('clihedge')
    running.push(
      await spawnWorker({ pool, handler: 'speed.js', idPrefix: 'slow', env: { SPEED_MS: '3000' } }),
    )
    running.push(await spawnWorker({ pool, handler: 'speed.js', idPrefix: 'quick', env: { SPEED_MS: '10' } }))
    const env = { HEDGEYARD_REDIS_URL: redisUrl() }
    // Whichever worker gets the first copy, the answer comes from the quick one, hedged or not.
    const out = await cli(
      ['submit', '--pool', pool, '--hedge-delay', '100', '--hedge-max', '2', '{"q":1}'],
      env,
    )
    expect(out.code).toBe(0)
    expect(JSON.parse(out.stdout).workerId).toBe('quick-1')
    const tied = await cli(['submit', '--pool', pool, '--tied', '{"q":2}'], env)
    expect(tied.code).toBe(0)
    const inspect = await cli(['inspect', '--pool', pool, '--json'], env)
    const { producers } = JSON.parse(inspect.stdout) as {
      producers: { submitted: number; hedgesSent: number }[]
    }
    expect(producers).toHaveLength(2)
    expect(producers.reduce((n, p) => n + p.submitted, 0)).toBe(2)
    const text = await cli(['inspect', '--pool', pool], env)
    expect(text.stdout).toMatch(/2 producers \(last report within 30 s\)/)
    expect(text.stdout).toMatch(
      /producer\s+submitted\s+ok\s+failed\s+saturated\s+rate limited\s+throttled\s+affinity hits\s+misses\s+hedges\s+won\s+cancelled\s+denied\s+retries\s+auto delay ms\s+p50 ms\s+p99 ms/,
    )
    const badPrefetch = await cli(['worker', '--pool', pool, '--handler', 'x.js', '--prefetch', 'many'], env)
    expect(badPrefetch.stderr).toMatch(/--prefetch/)
    expect(badPrefetch.code).not.toBe(0)
    const bad = await cli(['submit', '--pool', pool, '--hedge-max', '9', '1'], env)
    expect(bad.stderr).toMatch(
      /^error INVALID_ARGUMENT: hedge.maxAttempts must be an integer between 2 and 5 \(got 9\)/m,
    )
  })
})
