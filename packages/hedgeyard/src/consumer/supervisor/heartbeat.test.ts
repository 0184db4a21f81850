import { cleanupPool, client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { pino } from 'pino'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { poolKeys, workerKey } from '../../protocol/keys.js'
import { drainWorkerKeys } from '../../protocol/scripts/drain.js'
import { connectReady, createConnection } from '../../redis/connection.js'
import { Heartbeat, type HeartbeatRoster } from './heartbeat.js'
import { Registration } from './registration.js'

const c = client()
const cmd = createConnection(redisUrl(), 'command', 'heartbeat-test')
const logger = pino({ level: 'silent' })
const stops: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop()
})
afterAll(() => {
  c.disconnect()
  cmd.disconnect()
})

const LEASE_MS = 300

/** Workers as the heartbeat sees them; `drainingIds` are leased but not serving. */
function roster(ids: string[], drainingIds: string[] = []): HeartbeatRoster & { asked: string[][] } {
  const asked: string[][] = []
  return {
    asked,
    leased: () => ids,
    isServing: (id) => ids.includes(id) && !drainingIds.includes(id),
    drainAsked: (workerIds) => {
      asked.push(workerIds)
    },
  }
}

async function setup(label: string, ids: string[], drainingIds: string[] = []) {
  await connectReady(cmd, 5_000)
  const pool = uniquePool(label)
  const keys = poolKeys('hy', pool)
  const registration = new Registration(cmd, keys, {
    leaseMs: LEASE_MS,
    host: 'h',
    pid: 1,
    concurrency: 1,
    capacity: 1,
  })
  await registration.register(ids)
  const workers = roster(ids, drainingIds)
  const heartbeat = new Heartbeat(registration, workers, logger)
  stops.push(async () => {
    await heartbeat.stop()
    await cleanupPool(c, pool)
  })
  return { keys, registration, workers, heartbeat }
}

describe('Heartbeat', () => {
  it('keeps renewing the lease, and after stop() renews nothing more', async () => {
    const { keys, heartbeat } = await setup('beat', ['w'])
    const first = Number(await c.zscore(keys.alive, 'w'))
    heartbeat.start()
    // Alive well past its first lease.
    await eventually(async () => Number(await c.zscore(keys.alive, 'w')) > first + 2 * LEASE_MS)
    await heartbeat.stop()
    const last = Number(await c.zscore(keys.alive, 'w'))
    await new Promise((r) => setTimeout(r, 2 * LEASE_MS))
    expect(Number(await c.zscore(keys.alive, 'w'))).toBe(last)
  })

  it('registers again a serving worker whose keys Redis lost, but not one that is draining', async () => {
    const { keys, heartbeat } = await setup('gone', ['serving', 'leaving'], ['leaving'])
    await c.del(workerKey(keys, 'serving'), workerKey(keys, 'leaving'))
    heartbeat.start()
    await eventually(async () => (await c.hget(workerKey(keys, 'serving'), 'state')) === 'active')
    // Several beats later, the draining one is still not back in the pool.
    await new Promise((r) => setTimeout(r, LEASE_MS))
    expect(await c.exists(workerKey(keys, 'leaving'))).toBe(0)
  })

  it('tells the roster which workers someone asked to drain', async () => {
    const { keys, workers, heartbeat } = await setup('drain', ['a', 'b'])
    heartbeat.start()
    await drainWorkerKeys(cmd, keys, ['b'])
    await eventually(() => workers.asked.length > 0)
    expect(workers.asked[0]).toEqual(['b'])
  })

  it('corrects a clock that is off, so that deadlines are judged in Redis time', async () => {
    const { registration, heartbeat } = await setup('clock', ['w'])
    registration.clock.measure(0, -86_400_000, 0)
    heartbeat.start()
    // Redis runs on this host: measured right, the offset is about nothing.
    await eventually(() => Math.abs(registration.clock.offsetMs) < 1_000)
  })
})
