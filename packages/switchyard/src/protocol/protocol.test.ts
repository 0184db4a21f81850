import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import {
  cleanupPool,
  client,
  loadAndLengths,
  redisUrl,
  uniquePool,
} from '../../../../test/harness/helpers.js'
import { createConnection } from '../redis/connection.js'
import { fakeWorkers } from '../test-support/fake-pool.js'
import { ERROR_CODES } from './errors.js'
import { poolKeys } from './keys.js'
import { LUA_SCRIPTS } from './lua/scripts.generated.js'

const c = client()
afterAll(() => c.disconnect())
const root = join(dirname(fileURLToPath(import.meta.url)), '../../../..')

describe('Lua scripts', () => {
  it.each(Object.entries(LUA_SCRIPTS))(
    '%s loads into Redis and declares its KEYS in its header',
    async (_name, script) => {
      const sha = await c.script('LOAD', script.lua)
      expect(sha).toMatch(/^[0-9a-f]{40}$/)
      expect(script.numberOfKeys).toBeGreaterThan(0)
      expect(script.lua).toMatch(/^--\[\[\n {2}\w+: /)
      expect(script.lua).toMatch(/Returns/)
    },
  )

  it('complete fences a stale completion (LOST) and drops a second result for the same job (DUP)', async () => {
    const pool = uniquePool('fence')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('sy', pool)
    const conn = createConnection(redisUrl(), 'command', 'sy:test-fence')
    try {
      await conn.connect()
      // Queue two entries for the same job, as a hedge would, and read them as worker a.
      for (let i = 0; i < 2; i++) {
        // base, affinity TTL, seed, producer, result TTL, n, then one job without race (a plain job).
        await conn.dispatch(
          k.load,
          k.ready,
          k.alive,
          k.base,
          1000,
          1,
          'p',
          60_000,
          1,
          'job-1',
          '',
          '1',
          5000,
          1,
          3,
          '',
          '',
          1,
        )
      }
      const read = (await c.xreadgroup('GROUP', 'sy', 'a', 'COUNT', 10, 'STREAMS', `${k.base}q:a`, '>')) as [
        string,
        [string, string[]][],
      ][]
      const [[, entries]] = read as [[string, [string, string[]][]]]
      const [e1, e2] = entries.map(([id]) => id) as [string, string]
      const done = (entry: string, value: string) =>
        conn.complete(
          k.load,
          k.ready,
          k.dead,
          k.base,
          60_000,
          100,
          1,
          'a',
          entry,
          'job-1',
          'p',
          'ok',
          value,
          '',
          1,
          '',
        )
      expect(await done(e1, '{"ok":true,"value":1}')).toEqual(['OK'])
      expect(await done(e1, '{"ok":true,"value":1}')).toEqual(['LOST'])
      expect(await done(e2, '{"ok":true,"value":2}')).toEqual(['DUP'])
      expect(await c.get(`${k.base}res:job-1`)).toBe('{"ok":true,"value":1}')
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'a', load: 0, xlen: 0 }])
      expect(await c.hget(`${k.base}w:a`, 'processed')).toBe('2')
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})

describe('docs/errors.md', () => {
  it('documents exactly the error codes the library has', () => {
    const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8')
    const headings = [...doc.matchAll(/^## ([A-Z_]+)\s*$/gm)].map((m) => m[1])
    expect([...headings].sort()).toEqual([...ERROR_CODES].sort())
  })
})

describe('rescue script', () => {
  it('moves the jobs of a dead worker exactly once when two workers run it at the same time', async () => {
    const pool = uniquePool('rescue2')
    const fake = await fakeWorkers(redisUrl(), pool, { dead: 0, live: 0 })
    const k = poolKeys('sy', pool)
    const a = createConnection(redisUrl(), 'command', 'sy:test-rescue-a')
    const b = createConnection(redisUrl(), 'command', 'sy:test-rescue-b')
    try {
      await Promise.all([a.connect(), b.connect()])
      // 20 real jobs on the worker that is about to die, 5 of them read (started) by it.
      for (let i = 0; i < 20; i++) {
        const args = [
          k.load,
          k.ready,
          k.alive,
          k.base,
          1000,
          i,
          'p',
          60_000,
          1,
          `job-${i}`,
          '',
          '1',
          60_000,
          1,
          3,
          'live',
          '',
          1,
        ]
        await a.dispatch(...args)
      }
      expect(await c.xlen(`${k.base}q:dead`)).toBe(20)
      await c.xreadgroup('GROUP', 'sy', 'dead', 'COUNT', 5, 'STREAMS', `${k.base}q:dead`, '>')
      await c.zadd(k.alive, 1, 'dead')
      const rescue = (conn: typeof a) =>
        conn.rescue(k.load, k.ready, k.alive, k.dead, k.base, 7, 'dead', 500, 100, 60_000, 3) as Promise<
          number[]
        >
      const [ra, rb] = await Promise.all([rescue(a), rescue(b)])
      // One run moved all 20 and removed the worker; the other found nothing to do.
      expect([ra, rb].map((r) => r[1]).sort()).toEqual([0, 20])
      expect([ra, rb].map((r) => r[0]).sort()).toEqual([0, 1])
      const moved = (await c.xrange(`${k.base}q:live`, '-', '+')) as [string, string[]][]
      const ids = moved.map(([, f]) => f[f.indexOf('id') + 1])
      expect(new Set(ids).size).toBe(20)
      const attempts = moved.map(([, f]) => f[f.indexOf('attempt') + 1])
      expect(attempts.filter((x) => x === '2')).toHaveLength(5)
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'live', load: 20, xlen: 20 }])
      expect(await c.exists(`${k.base}q:dead`, `${k.base}w:dead`)).toBe(0)
    } finally {
      a.disconnect()
      b.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})
