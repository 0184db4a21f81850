import { connect, createServer, type Server, type Socket } from 'node:net'
import {
  cleanupPool,
  client,
  eventually,
  poolKeysInRedis,
  redisUrl,
  uniquePool,
} from '@hedgeyard/testing/helpers'
import { afterAll, describe, expect, it } from 'vitest'
import { isHedgeyardError } from '../protocol/errors.js'
import { poolKeys, workerKey } from '../protocol/keys.js'
import { startWorkers } from './start-workers.js'

const c = client()
const users: string[] = []
afterAll(async () => {
  for (const user of users) await c.acl('DELUSER', user)
  c.disconnect()
})

/** The names of the connections a group with this id prefix opens. */
async function groupConnections(idPrefix: string): Promise<string[]> {
  const list = (await c.client('LIST')) as string
  const names = list.split('\n').map((line) => line.match(/ name=(\S*) /)?.[1] ?? '')
  return names.filter((n) => n.startsWith('hy:') && n.includes(idPrefix))
}

/** A URL of the test's Redis for a user allowed everything but what `rules` take away. */
async function userUrl(label: string, ...rules: string[]): Promise<string> {
  const user = `${label}-${process.pid}`
  users.push(user)
  await c.acl('SETUSER', user, 'reset', 'on', '>pw', '~*', '&*', '+@all', ...rules)
  const url = new URL(redisUrl())
  url.username = user
  url.password = 'pw'
  return url.toString()
}

/**
 * A TCP proxy in front of Redis that loses the reply to the first request carrying `marker`: the
 * request reaches Redis and runs, then the connection drops before its reply comes back, as when
 * a network fails at the wrong moment. Later connections pass.
 */
async function replyLosingProxy(marker: string): Promise<{ url: string; close: () => Promise<void> }> {
  const target = new URL(redisUrl())
  const sockets = new Set<Socket>()
  let hasLost = false
  const server: Server = createServer((inbound) => {
    const outbound = connect(Number(target.port), target.hostname)
    let isLosing = false
    for (const s of [inbound, outbound]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        inbound.destroy()
        outbound.destroy()
      })
    }
    inbound.on('data', (chunk: Buffer) => {
      if (!hasLost && chunk.includes(marker)) {
        hasLost = true
        isLosing = true
      }
      outbound.write(chunk)
    })
    outbound.on('data', (chunk: Buffer) => {
      if (isLosing) inbound.destroy()
      else inbound.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  const url = new URL(redisUrl())
  url.host = `127.0.0.1:${port}`
  return {
    url: url.toString(),
    close: () => {
      for (const s of sockets) s.destroy()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
}

describe('startWorkers, a start that fails', () => {
  it('when SUBSCRIBE is refused: rejects, leaves no connection open and no worker registered', async () => {
    const pool = uniquePool('start-nosub')
    const idPrefix = `${pool}-w`
    const redis = await userUrl('hy-no-channels', 'resetchannels')
    const err = await startWorkers({ redis, pool, idPrefix, count: 2, handler: () => 1 }).catch((e) => e)
    expect(isHedgeyardError(err, 'REDIS_NOPERM')).toBe(true)
    expect(String(err)).toMatch(/subscribing to cancels/)
    await eventually(async () => (await groupConnections(idPrefix)).length === 0)
    expect(await poolKeysInRedis(c, pool)).toEqual([])
  })

  it('when the reply to its registration is lost: rejects, and deregisters the workers the script did register', async () => {
    const pool = uniquePool('start-lost')
    const idPrefix = `${pool}-w`
    // The first call naming a worker's key is the one that registers it.
    const proxy = await replyLosingProxy(workerKey(poolKeys('hy', pool), `${idPrefix}-1`))
    try {
      const err = await startWorkers({ redis: proxy.url, pool, idPrefix, handler: () => 1 }).catch((e) => e)
      expect(isHedgeyardError(err, 'REDIS_UNAVAILABLE')).toBe(true)
      expect(String(err)).toMatch(/register/)
      // Left registered, the worker would take jobs and never run them until its lease ran out.
      expect(await poolKeysInRedis(c, pool)).toEqual([])
      await eventually(async () => (await groupConnections(idPrefix)).length === 0)
    } finally {
      await proxy.close()
      await cleanupPool(c, pool)
    }
  })
})

describe('startWorkers, close()', () => {
  it('leaves no connection open and no key of its workers', async () => {
    const pool = uniquePool('start-close')
    const idPrefix = `${pool}-w`
    const group = await startWorkers({ redis: redisUrl(), pool, idPrefix, count: 2, handler: () => 1 })
    // Its command and cancel connections, and one blocking connection per worker.
    await eventually(async () => (await groupConnections(idPrefix)).length === 4)
    await group.close()
    await eventually(async () => (await groupConnections(idPrefix)).length === 0)
    expect(await poolKeysInRedis(c, pool)).toEqual([])
  })
})
