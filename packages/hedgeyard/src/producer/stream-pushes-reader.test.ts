import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import pino from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { outKey, poolKeys } from '../protocol/keys.js'
import { connectReady, createConnection } from '../redis/connection.js'
import { StreamPushes } from './stream-pushes.js'
import { type OutputSink, StreamReader } from './stream-reader.js'

const c = client()
afterAll(() => c.disconnect())

const push = (jobId: string, first: number, data: string) =>
  Buffer.from(`~\n${jobId} ${first} 1 - - ${Buffer.byteLength(data)}\n${data}`)

describe('StreamPushes with the real reader', () => {
  it('takes a stream back while the reader is blocked on it, and the reply it then gets is dropped: no chunk twice', async () => {
    const k = poolKeys('hy', uniquePool('take-back'))
    const key = outKey(k, 'j')
    const cmd = createConnection(redisUrl(), 'command', 'hy:test-take-back', k.base)
    await connectReady(cmd, 5_000)
    const logger = pino({ level: 'silent' })
    const reader = new StreamReader(redisUrl(), cmd, 'hy:test-take-back-reader', k.base, 5_000, logger)
    const pushes = new StreamPushes(() => reader, logger)
    const got: number[] = []
    let ended = ''
    const output: OutputSink = {
      key,
      wantsMore: () => true,
      onChunk: (seq) => got.push(seq),
      onEnd: (envelope) => {
        ended = envelope
      },
      onMalformed: (reason) => {
        throw new Error(reason)
      },
    }
    try {
      pushes.add('j', output)
      pushes.onMessage(push('j', 1, '1'))
      // Handed to the reader, which delivers 2 and 3 from Redis and blocks for more.
      pushes.handOverAll('test')
      await c.xadd(key, '0-1', 'd', '1', 'w', 'a', 'e', '1-1')
      await c.xadd(key, '0-2', 'd', '2')
      await c.xadd(key, '0-3', 'd', '3')
      await eventually(() => got.length === 3, 5_000)
      await new Promise((r) => setTimeout(r, 50))
      // The push of 4 follows on: back to pushes while the reader's read is still blocked on the
      // key. Chunk 4 then reaches Redis, which wakes that read: what it brings is not delivered.
      pushes.onMessage(push('j', 4, '4'))
      await c.xadd(key, '0-4', 'd', '4')
      await c.xadd(key, '0-5', 'd', '5')
      await new Promise((r) => setTimeout(r, 200))
      pushes.onMessage(push('j', 5, '5'))
      await c.xadd(key, '0-*', 'end', '{"ok":true}')
      pushes.onMessage(Buffer.from(`~\nj end 6 - - 11\n{"ok":true}`))
      expect(got).toEqual([1, 2, 3, 4, 5])
      expect(ended).toBe('{"ok":true}')
      expect(reader.size).toBe(0)
    } finally {
      pushes.close()
      await reader.close()
      cmd.disconnect()
      await c.del(key)
    }
  })
})
