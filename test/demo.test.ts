import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { poolKeys } from 'hedgeyard'
import { queueKey, workerKey } from 'hedgeyard/internal'
import { describe, expect, it } from 'vitest'
import { CLI, client, isKeyOf, poolKeysInRedis, redisUrl, uniquePool } from './harness/helpers.js'

const run = promisify(execFile)

describe('hedgeyard demo', () => {
  it('runs chat sessions over worker processes on its own redis-server and prints the summary', async () => {
    const env = { ...process.env }
    delete env.HEDGEYARD_REDIS_URL
    const { stdout, stderr } = await run(
      process.execPath,
      [
        CLI,
        'demo',
        '--processes',
        '2',
        '--count',
        '2',
        '--sessions',
        '20',
        '--turns',
        '3',
        '--median-ms',
        '5',
      ],
      { env, timeout: 60_000 },
    )
    expect(stdout).toMatch(/started redis-server at redis:\/\/127\.0\.0\.1:\d+/)
    expect(stdout).toMatch(/requests\s+60 \(60 ok, 0 failed\)/)
    expect(stdout).toMatch(/latency\s+p50 [\d.]+ ms\s+p95 [\d.]+ ms\s+p99 [\d.]+ ms/)
    // Three turns per session: the first binds, the next two hit.
    expect(stdout).toMatch(/affinity\s+66\.7% hits \(40\/60\); 20\/20 sessions stayed on one worker/)
    const rows = stdout.split('\n').filter((l) => /^demo-p\d-\d\s/.test(l))
    expect(rows).toHaveLength(4)
    expect(rows.reduce((n, row) => n + Number(row.trim().split(/\s+/)[2]), 0)).toBe(60)
    expect(stderr).toMatch(/\[#+\] 60\/60 requests/)
  })

  it('uses a configured Redis and leaves no worker behind', async () => {
    const pool = uniquePool('demo')
    const { stdout } = await run(
      process.execPath,
      [
        CLI,
        'demo',
        '--pool',
        pool,
        '--processes',
        '1',
        '--count',
        '1',
        '--sessions',
        '3',
        '--turns',
        '2',
        '--median-ms',
        '1',
      ],
      { env: { ...process.env, HEDGEYARD_REDIS_URL: redisUrl() }, timeout: 60_000 },
    )
    expect(stdout).not.toMatch(/started redis-server/)
    expect(stdout).toMatch(/requests\s+6 \(6 ok, 0 failed\)/)
    const c = client()
    const keys = poolKeys('hy', pool)
    const left = (await poolKeysInRedis(c, pool)).filter(
      (k) => isKeyOf(k, keys, workerKey) || isKeyOf(k, keys, queueKey),
    )
    c.disconnect()
    expect(left).toEqual([])
  })
})
