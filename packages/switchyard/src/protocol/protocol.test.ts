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
