import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import {
  CLI,
  client,
  eventually,
  isKeyOf,
  poolKeysInRedis,
  redisUrl,
  uniquePool,
} from '@hedgeyard/testing/helpers'
import { getPoolLimits, poolKeys } from 'hedgeyard'
import { queueKey, workerKey } from 'hedgeyard/internal'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)

/** The environment without a configured Redis: the demo starts its own. */
function ownRedisEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  delete env.HEDGEYARD_REDIS_URL
  return env
}

/** The pids the demo says it started: Redis, the simulator, the workers, the gateways. */
function startedPids(stdout: string): number[] {
  return [...stdout.matchAll(/\(pid (\d+)\)/g)].map((m) => Number(m[1]))
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** The rows of the per-worker table. */
function workerRows(stdout: string): string[][] {
  return stdout
    .split('\n')
    .filter((l) => /^demo-p\d+-\d+\s/.test(l))
    .map((l) => l.trim().split(/\s+/))
}

describe('hedgeyard demo', () => {
  it("plays the seed's scenario by default: 200 sessions x 5 turns, half streamed, 2 gateways, 3 workers", async () => {
    const { stdout } = await run(process.execPath, [CLI, 'demo', '--dry-run'], { env: ownRedisEnv() })
    expect(stdout).toMatch(/200 chat sessions x 5 turns = 1000 requests with the @google\/genai SDK/)
    expect(stdout).toMatch(/100 sessions streamed \(generateContentStream\), 100 not \(generateContent\)/)
    expect(stdout).toMatch(/^gateways\s+2 processes: hedgeyard gateway/m)
    expect(stdout).toMatch(/^workers\s+3 processes x 1 worker: hedgeyard worker --handler @hedgeyard\/genai/m)
    expect(stdout).toMatch(/requests\/s per API key/)
    // A dry run starts nothing.
    expect(stdout).not.toMatch(/started/)
  })

  it('runs chat sessions with the SDK through gateway processes onto worker processes, on its own redis-server', async () => {
    const { stdout, stderr } = await run(
      process.execPath,
      [CLI, 'demo', '--sessions', '10', '--turns', '3', '--parallel', '5'],
      { env: ownRedisEnv(), timeout: 90_000 },
    )
    expect(stdout).toMatch(/started redis-server at redis:\/\/127\.0\.0\.1:\d+/)
    expect(stdout).toMatch(/started 2 gateways: http:\/\/127\.0\.0\.1:\d+ \(pid \d+\), http:/)
    expect(stdout).toMatch(/requests\s+30 \(30 ok, 0 failed\) in [\d.]+ s, \d+ req\/s; 15 streamed, 15 not/)
    expect(stdout).toMatch(/first token p50 [\d.]+ ms\s+p99 [\d.]+ ms/)
    expect(stdout).toMatch(/last token\s+p50 [\d.]+ ms\s+p99 [\d.]+ ms/)
    expect(stdout).toMatch(/429s\s+\d+ absorbed/)
    // Each session's first turn binds it to a worker; the two others, sent through the other
    // gateway and back, find that worker.
    expect(stdout).toMatch(
      /affinity\s+66\.7% hits \(20\/30, the gateways' counters\): each session's later turns went to the worker of its first/,
    )
    expect(stdout).toMatch(/replies\s+30\/30 are the model's answer/)
    const rows = workerRows(stdout)
    expect(rows.map((r) => r[0])).toEqual(['demo-p1-1', 'demo-p2-1', 'demo-p3-1'])
    expect(rows.reduce((n, r) => n + Number(r[2]), 0)).toBe(30)
    expect(stderr).toMatch(/\[#+\] 30\/30 requests/)
    // Redis, the simulator, 3 workers and 2 gateways, all stopped.
    const pids = startedPids(stdout)
    expect(pids).toHaveLength(7)
    expect(pids.filter(isAlive)).toEqual([])
  })

  it('absorbs the 429s of a pool quota, on a configured Redis, and leaves no worker or quota behind', async () => {
    const pool = uniquePool('demo')
    const { stdout } = await run(
      process.execPath,
      [
        CLI,
        'demo',
        '--pool',
        pool,
        '--sessions',
        '4',
        '--turns',
        '2',
        '--parallel',
        '4',
        '--pool-quota-rps',
        '2',
      ],
      { env: { ...process.env, HEDGEYARD_REDIS_URL: redisUrl() }, timeout: 90_000 },
    )
    expect(stdout).not.toMatch(/started redis-server/)
    expect(stdout).toMatch(/using the configured Redis/)
    // Four sessions at once against 2 requests a second: the gateways refuse some, the client
    // sends them again after their Retry-After, and every turn is answered.
    expect(stdout).toMatch(/requests\s+8 \(8 ok, 0 failed\)/)
    const absorbed = Number(/429s\s+(\d+) absorbed/.exec(stdout)?.[1])
    expect(absorbed).toBeGreaterThan(0)
    expect(stdout).toMatch(/the model answered 8 calls and refused 0 with 429/)
    expect(stdout).toMatch(/affinity\s+50\.0% hits \(4\/8/)
    const c = client()
    const keys = poolKeys('hy', pool)
    const left = (await poolKeysInRedis(c, pool)).filter(
      (k) => isKeyOf(k, keys, workerKey) || isKeyOf(k, keys, queueKey),
    )
    c.disconnect()
    expect(left).toEqual([])
    expect(await getPoolLimits({ redis: redisUrl(), pool })).toEqual({})
  })

  it('stops every process it started on Ctrl-C', async () => {
    const demo = spawn(process.execPath, [CLI, 'demo'], {
      env: ownRedisEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    demo.stdout.on('data', (d) => {
      stdout += d
    })
    demo.stderr.on('data', (d) => {
      stderr += d
    })
    const exited = new Promise<number | null>((resolve) => demo.once('exit', (code) => resolve(code)))
    // Sessions under way: the progress line has counted some requests.
    await eventually(() => /\] [1-9]\d*\/1000 requests/.test(stderr), 60_000, 100)
    const pids = startedPids(stdout)
    expect(pids).toHaveLength(7)
    expect(pids.filter(isAlive)).toEqual(pids)
    demo.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(stderr).toMatch(/SIGINT: stopping the processes the demo started/)
    expect(pids.filter(isAlive)).toEqual([])
  })
})
