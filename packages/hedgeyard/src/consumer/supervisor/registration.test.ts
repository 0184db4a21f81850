import { cleanupPool, client, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { afterAll, describe, expect, it } from 'vitest'
import { entryFieldList } from '../../protocol/codec.js'
import { poolKeys, queueKey, workerKey } from '../../protocol/keys.js'
import { drainWorkerKeys } from '../../protocol/scripts/drain.js'
import { connectReady, createConnection } from '../../redis/connection.js'
import { Registration } from './registration.js'

const c = client()
const cmd = createConnection(redisUrl(), 'command', 'registration-test')
afterAll(() => {
  c.disconnect()
  cmd.disconnect()
})

const WORKER = {
  leaseMs: 5_000,
  host: 'box-1',
  pid: 4242,
  concurrency: 4,
  capacity: 20,
  breakerFailures: 0,
  breakerCoolOffMs: 5_000,
}

async function redisNowMs(): Promise<number> {
  const [seconds, micros] = await c.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

describe('Registration', () => {
  it('registers workers with what placement reads, and takes the clock offset from the reply', async () => {
    await connectReady(cmd, 5_000)
    const pool = uniquePool('registration')
    const keys = poolKeys('hy', pool)
    const registration = new Registration(cmd, keys, WORKER)
    // A clock that is a day off: the first reply puts it right.
    registration.clock.measure(0, 86_400_000, 0)
    await registration.register(['r-1', 'r-2'])
    for (const id of ['r-1', 'r-2']) {
      expect(await c.hgetall(workerKey(keys, id))).toMatchObject({
        host: 'box-1',
        pid: '4242',
        concurrency: '4',
        capacity: '20',
        state: 'active',
      })
      expect(await c.zscore(keys.ready, id)).not.toBeNull()
    }
    expect(Math.abs(registration.clock.now() - (await redisNowMs()))).toBeLessThan(1_000)
    await cleanupPool(c, pool)
  })

  it("renews leases and tells each worker's status: OK, DRAINING when asked to drain, GONE when its keys are lost", async () => {
    await connectReady(cmd, 5_000)
    const pool = uniquePool('renew')
    const keys = poolKeys('hy', pool)
    const registration = new Registration(cmd, keys, WORKER)
    await registration.register(['a', 'b', 'c'])
    const leaseBefore = Number(await c.zscore(keys.alive, 'a'))
    await new Promise((r) => setTimeout(r, 20))
    await drainWorkerKeys(cmd, keys, ['b'])
    await c.del(workerKey(keys, 'c'))
    expect(await registration.renew(['a', 'b', 'c'])).toEqual(['OK', 'DRAINING', 'GONE'])
    expect(Number(await c.zscore(keys.alive, 'a'))).toBeGreaterThan(leaseBefore)
    await cleanupPool(c, pool)
  })

  it('deregisters a worker whose stream is empty, and keeps one that still holds a job (BUSY)', async () => {
    await connectReady(cmd, 5_000)
    const pool = uniquePool('deregister')
    const keys = poolKeys('hy', pool)
    const registration = new Registration(cmd, keys, WORKER)
    await registration.register(['idle', 'busy'])
    await c.xadd(queueKey(keys, 'busy'), '*', ...entryFieldList({ id: 'job-1', payload: '1', producer: 'p' }))
    expect(await registration.deregister(['idle', 'busy'])).toEqual(['OK', 'BUSY'])
    expect(await c.exists(workerKey(keys, 'idle'), queueKey(keys, 'idle'))).toBe(0)
    expect(await c.zscore(keys.alive, 'idle')).toBeNull()
    expect(await c.hget(workerKey(keys, 'busy'), 'state')).toBe('draining')
    await cleanupPool(c, pool)
  })
})
