import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import {
  CLI,
  eventually,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, inspectPool } from 'hedgeyard'
import { afterEach, describe, expect, it } from 'vitest'

// The CLI can do what the library can (issue 19, item 9): submit's retries and attempt limit, dead
// letters named by id, and every counter of `inspect --json` in plain `inspect`.

const run = promisify(execFile)
const running: WorkerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
})

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args, '--redis', redisUrl()])
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('hedgeyard submit', () => {
  it('--retry sends a retryable failure to another worker; --hedge-delay takes auto', async () => {
    const pool = uniquePool('cli-retry')
    running.push(await spawnWorker({ pool, handler: 'upstream.js', idPrefix: 'bad' }))
    // The session is bound to bad-1 while it is alone, so the first copy goes there.
    expect(JSON.parse((await cli(['submit', '--pool', pool, '--session', 's', '{}'])).stdout)).toMatchObject({
      workerId: 'bad-1',
    })
    running.push(await spawnWorker({ pool, handler: 'upstream.js', idPrefix: 'good' }))
    const once = await cli(['submit', '--pool', pool, '--session', 's', '{"failOn":"bad"}'])
    expect(once.stderr).toBe('error HANDLER_ERROR: Error: failed on bad-1\n')
    const retried = await cli([
      'submit',
      '--pool',
      pool,
      '--session',
      's',
      '--retry',
      '2',
      '{"failOn":"bad"}',
    ])
    expect(retried.stderr).toBe('')
    expect(JSON.parse(retried.stdout)).toMatchObject({ workerId: 'good-1' })
    const tooMany = await cli(['submit', '--pool', pool, '--retry', '9', '{}'])
    expect(tooMany.code).toBe(1)
    expect(tooMany.stderr).toMatch(
      /^error INVALID_ARGUMENT: retry\.maxAttempts must be an integer between 1 and 5/,
    )
    const auto = await cli(['submit', '--pool', pool, '--hedge-delay', 'auto', '--hedge-max', '2', '{}'])
    expect(auto.code).toBe(0)
    expect((await cli(['submit', '--pool', pool, '--hedge-delay', 'soon', '{}'])).stderr).toContain(
      "--hedge-delay must be a non-negative integer (got 'soon')",
    )
  })

  it("--on-redis-unavailable takes 'wait' or 'reject', and refuses anything else naming the flag", async () => {
    const pool = uniquePool('cli-redis-unavailable')
    running.push(await spawnWorker({ pool, handler: 'upstream.js', idPrefix: 'w' }))
    for (const choice of ['wait', 'reject']) {
      const ok = await cli(['submit', '--pool', pool, '--on-redis-unavailable', choice, '{}'])
      expect(ok.stderr).toBe('')
      expect(JSON.parse(ok.stdout)).toMatchObject({ workerId: 'w-1' })
    }
    const bad = await cli(['submit', '--pool', pool, '--on-redis-unavailable', 'retry', '{}'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toContain("--on-redis-unavailable must be 'wait' or 'reject' (got 'retry')")
  })

  it('--max-attempts 1 dead-letters a job whose worker dies; dead retry and purge refuse an unknown id', async () => {
    const pool = uniquePool('cli-max-attempts')
    const doomed = await spawnWorker({
      pool,
      handler: 'upstream.js',
      idPrefix: 'doomed',
      extraArgs: ['--lease-ms', '300'],
    })
    running.push(doomed)
    const submit = spawn(process.execPath, [
      CLI,
      'submit',
      '--redis',
      redisUrl(),
      '--pool',
      pool,
      '--max-attempts',
      '1',
      '{"delayMs":3000}',
    ])
    let stderr = ''
    submit.stderr.on('data', (d) => {
      stderr += d
    })
    const exited = new Promise<number | null>((r) => submit.on('exit', r))
    await eventually(async () => (await inspectPool({ redis: redisUrl(), pool }))[0]?.inflight === 1)
    await doomed.stop('SIGKILL')
    // The next live worker's rescue finds the job out of attempts.
    running.push(await spawnWorker({ pool, handler: 'upstream.js', idPrefix: 'rescuer' }))
    expect(await exited).toBe(1)
    expect(stderr).toBe('error DEAD_LETTERED: worker doomed-1 was lost; 1 attempts used\n')

    const [letter] = JSON.parse((await cli(['dead', 'list', '--pool', pool, '--json'])).stdout) as {
      deadId: string
      maxAttempts: number
    }[]
    expect(letter).toMatchObject({ maxAttempts: 1 })
    const deadId = letter?.deadId as string
    // An unknown id among known ones: an error that names it, and nothing retried or purged.
    const retryUnknown = await cli(['dead', 'retry', '--pool', pool, deadId, '1-0'])
    expect(retryUnknown).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `error NOT_FOUND: no such dead letter in pool '${pool}': 1-0\n`,
    })
    const purgeUnknown = await cli(['dead', 'purge', '--pool', pool, '1-0', deadId])
    expect(purgeUnknown).toMatchObject({
      code: 1,
      stdout: '',
      stderr: `error NOT_FOUND: no such dead letter in pool '${pool}': 1-0\n`,
    })
    expect((await cli(['dead', 'purge', '--pool', pool, 'latest'])).stderr).toContain(
      'error INVALID_ARGUMENT: deadIds must be stream ids such as 1700000000000-0 (got "latest")',
    )
    // The letter is still there: retried, its result can be read from any host.
    const retried = await cli(['dead', 'retry', '--pool', pool, deadId])
    const jobId = /^retried \S+ as job (\S+) on rescuer-1$/m.exec(retried.stdout)?.[1] as string
    expect(retried.stdout).toBe(`retried ${deadId} as job ${jobId} on rescuer-1\n1 dead letters retried\n`)
    const result = await eventually(async () => {
      const r = await cli(['result', '--pool', pool, jobId])
      return r.code === 0 ? r.stdout : ''
    })
    expect(JSON.parse(result)).toEqual({ workerId: 'rescuer-1', jobId })
  })
})

describe('hedgeyard inspect', () => {
  it('shows every counter that --json has', async () => {
    const pool = uniquePool('cli-inspect-all')
    running.push(await spawnWorker({ pool, handler: 'upstream.js', idPrefix: 'w' }))
    const d = new Dispatcher({ redis: redisUrl(), pool })
    await d.submit({}, { session: 'a' })
    await d.submit({}, { session: 'a' })
    await expect(d.submit({ fail: 'x' })).rejects.toThrow()
    await d.close() // reports its counters
    const json = JSON.parse((await cli(['inspect', '--pool', pool, '--json'])).stdout) as {
      workers: Record<string, unknown>[]
      producers: Record<string, unknown>[]
    }
    const text = (await cli(['inspect', '--pool', pool])).stdout

    // Each table's header and its one row, split on the two or more spaces between columns.
    const tableAt = (first: string) => {
      const lines = text.split('\n')
      const i = lines.findIndex((l) => l.startsWith(first))
      const cells = (l: string | undefined) => (l ?? '').trim().split(/ {2,}/)
      return Object.fromEntries(cells(lines[i]).map((h, c) => [h, cells(lines[i + 1])[c]]))
    }
    const workerRow = tableAt('worker ')
    const producerRow = tableAt('producer ')
    const workerColumns: Record<string, string> = {
      workerId: 'worker',
      host: 'host',
      pid: 'pid',
      inflight: 'inflight',
      queueLen: 'queued',
      capacity: 'capacity',
      concurrency: 'concurrency',
      processed: 'processed',
      errors: 'errors',
      consecutiveFailures: 'fails in a row',
    }
    // Shown in other words: alive as yes/NO; state, cooldown and breaker in one 'state' column.
    const inWords = ['alive', 'state', 'coolingMs', 'breaker', 'breakerMs']
    for (const [key, value] of Object.entries(json.workers[0] ?? {})) {
      if (inWords.includes(key)) continue
      expect(workerColumns[key], `worker field ${key}`).toBeDefined()
      expect(workerRow[workerColumns[key] as string], `worker column for ${key}`).toBe(String(value))
    }
    const producerColumns: Record<string, string> = {
      producerId: 'producer',
      submitted: 'submitted',
      succeeded: 'ok',
      failed: 'failed',
      saturated: 'saturated',
      rateLimited: 'rate limited',
      throttled: 'throttled',
      affinityHits: 'affinity hits',
      affinityMisses: 'misses',
      hedgesSent: 'hedges',
      hedgesWon: 'won',
      hedgesCancelled: 'cancelled',
      hedgesDenied: 'denied',
      retriesSent: 'retries',
      autoDelayMs: 'auto delay ms',
      latencyP50Ms: 'p50 ms',
      latencyP99Ms: 'p99 ms',
    }
    const producer = json.producers[0] ?? {}
    expect(producer).toMatchObject({
      submitted: 3,
      succeeded: 2,
      failed: 1,
      affinityHits: 1,
      affinityMisses: 1,
    })
    for (const [key, value] of Object.entries(producer)) {
      if (key === 'reportedAt') continue // when it reported: the 30 s window, not a counter
      expect(producerColumns[key], `producer field ${key}`).toBeDefined()
      const shown =
        typeof value === 'number' && key.startsWith('latency') ? String(Math.round(value)) : String(value)
      expect(producerRow[producerColumns[key] as string], `producer column for ${key}`).toBe(shown)
    }
  })
})

describe('hedgeyard worker', () => {
  it('takes every option from an environment variable as well as a flag, and names a bad one', async () => {
    const pool = uniquePool('cli-env')
    const worker = await spawnWorker({
      pool,
      handler: 'echo.js',
      // spawnWorker passes --count 1 and --concurrency 8 as flags: a flag wins over its variable.
      env: {
        HEDGEYARD_CONCURRENCY: '2',
        HEDGEYARD_QUEUE_CAPACITY: '5',
        HEDGEYARD_ID_PREFIX: 'from-env',
        HEDGEYARD_DRAIN_TIMEOUT_MS: '1000',
      },
    })
    running.push(worker)
    const [w] = await inspectPool({ redis: redisUrl(), pool })
    expect(w).toMatchObject({ workerId: 'from-env-1', concurrency: 8, capacity: 13 })
    const bad = await run(process.execPath, [CLI, 'worker', '--handler', 'x.js'], {
      env: { ...process.env, HEDGEYARD_DRAIN_TIMEOUT_MS: 'soon' },
    }).catch((err: { code: number; stderr: string }) => err)
    expect(bad).toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/HEDGEYARD_DRAIN_TIMEOUT_MS.*soon|soon.*HEDGEYARD_DRAIN_TIMEOUT_MS/),
    })
  })
})
