import { plainDispatchItem } from '@hedgeyard/testing/fake-pool'
import { cleanupPool, client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import type { MetricsSink } from '../../observe/metrics-sink.js'
import { type PoolKeys, poolKeys, queueKey, workerKey } from '../../protocol/keys.js'
import { dispatchJobs } from '../../protocol/scripts/dispatch.js'
import { connectReady, createConnection } from '../../redis/connection.js'
import { Recoverer } from './recoverer.js'
import { Registration } from './registration.js'

const c = client()
const cmd = createConnection(redisUrl(), 'command', 'recoverer-test')
afterAll(() => {
  c.disconnect()
  cmd.disconnect()
})

const JOB = plainDispatchItem('job-1')

/** Registers `id` with a lease of `leaseMs` and no heartbeat. */
function register(keys: PoolKeys, id: string, leaseMs: number): Promise<void> {
  const worker = { leaseMs, host: 'h', pid: 1, concurrency: 1, capacity: 10 }
  return new Registration(cmd, keys, worker).register([id])
}

function recoverer(keys: PoolKeys, pool: string, metrics?: MetricsSink): Recoverer {
  const settings = { intervalMs: 50, deadLetterCap: 100, resultTtlMs: 60_000, pool, metrics }
  return new Recoverer(cmd, keys, settings, pino({ level: 'silent' }))
}

describe('Recoverer', () => {
  it("moves a dead worker's job to a live worker, removes the dead one, and tells the metrics sink", async () => {
    await connectReady(cmd, 5_000)
    const pool = uniquePool('recover')
    const keys = poolKeys('hy', pool)
    await register(keys, 'dead', 100)
    const settings = { producerId: 'p', affinityTtlMs: 1_000, resultTtlMs: undefined, seed: 1 }
    expect(await dispatchJobs(cmd, keys, settings, [JOB])).toMatchObject([
      { status: 'queued', workerId: 'dead' },
    ])
    await register(keys, 'live', 60_000)
    const rescued: [string, number, number][] = []
    const r = recoverer(keys, pool, { rescued: (p, moved, lettered) => rescued.push([p, moved, lettered]) })
    r.start()
    await eventually(async () => (await c.xlen(queueKey(keys, 'live'))) === 1)
    await r.stop()
    expect(await c.exists(workerKey(keys, 'dead'), queueKey(keys, 'dead'))).toBe(0)
    expect(await c.zscore(keys.alive, 'dead')).toBeNull()
    expect(rescued).toEqual([[pool, 1, 0]])
    await cleanupPool(c, pool)
  })

  it('leaves a worker whose lease is still running, and after stop() rescues nothing more', async () => {
    await connectReady(cmd, 5_000)
    const pool = uniquePool('recover-stop')
    const keys = poolKeys('hy', pool)
    await register(keys, 'alive', 60_000)
    const r = recoverer(keys, pool)
    r.start()
    await new Promise((r) => setTimeout(r, 200))
    expect(await c.zscore(keys.alive, 'alive')).not.toBeNull()
    await r.stop()
    await register(keys, 'dies-later', 100)
    await new Promise((r) => setTimeout(r, 400))
    expect(await c.exists(workerKey(keys, 'dies-later'))).toBe(1)
    await cleanupPool(c, pool)
  })
})
