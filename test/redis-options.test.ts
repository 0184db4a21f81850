import { redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { Dispatcher, type HedgeyardError, inspectPool, isHedgeyardError, startWorkers } from 'hedgeyard'
import { Cluster, Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'

// A `redis` option that connects and then times out on every submit is refused when it is given,
// by the dispatcher's constructor, startWorkers and the operator functions alike.
const clients: (Redis | Cluster)[] = []
afterAll(() => {
  for (const c of clients) c.disconnect()
})

function prefixed(): Redis {
  const c = new Redis(redisUrl(), { keyPrefix: 'app:', lazyConnect: true })
  clients.push(c)
  return c
}

function cluster(): Cluster {
  const url = new URL(redisUrl())
  const c = new Cluster([{ host: url.hostname, port: Number(url.port) }], { lazyConnect: true })
  clients.push(c)
  return c
}

const handler = async (req: unknown) => req

function thrown(f: () => unknown): HedgeyardError {
  try {
    f()
  } catch (err) {
    if (isHedgeyardError(err)) return err
    throw err
  }
  throw new Error('expected a throw')
}

async function rejected(p: Promise<unknown>): Promise<HedgeyardError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (isHedgeyardError(err)) return err
  throw new Error(`expected a HedgeyardError, got ${String(err)}`)
}

describe('the redis option', () => {
  it('refuses a client with a keyPrefix, which scripts would not honour, and names the prefix option', async () => {
    const pool = uniquePool('keyprefix')
    const errors = [
      thrown(() => new Dispatcher({ redis: prefixed(), pool })),
      await rejected(startWorkers({ redis: prefixed(), pool, handler })),
      await rejected(inspectPool({ redis: prefixed(), pool })),
      // A URL can set it too.
      thrown(() => new Dispatcher({ redis: `${redisUrl()}?keyPrefix=app:`, pool })),
    ]
    for (const err of errors) {
      expect(err.code).toBe('INVALID_ARGUMENT')
      expect(err.message).toMatch(/^redis: the client has keyPrefix 'app:'.*use the prefix option instead$/)
    }
  })

  it('refuses an ioredis Cluster client, and says how to name a cluster instead', async () => {
    const pool = uniquePool('cluster')
    const errors = [
      thrown(() => new Dispatcher({ redis: cluster() as unknown as Redis, pool })),
      await rejected(startWorkers({ redis: cluster() as unknown as Redis, pool, handler })),
      await rejected(inspectPool({ redis: cluster() as unknown as Redis, pool })),
    ]
    for (const err of errors) {
      expect(err.code).toBe('INVALID_ARGUMENT')
      expect(err.message).toMatch(/^redis: an ioredis Cluster client is not taken .* redis\+cluster:\/\//)
    }
    // Refused before anything connected.
    for (const c of clients) if (c instanceof Cluster) expect(c.status).toBe('wait')
  })

  it('refuses what is neither a URL nor a client, such as ioredis options', () => {
    const url = new URL(redisUrl())
    const options = { host: url.hostname, port: Number(url.port) } as unknown as Redis
    const err = thrown(() => new Dispatcher({ redis: options, pool: 'p' }))
    expect(err.code).toBe('INVALID_ARGUMENT')
    expect(err.message).toBe(
      'redis must be a URL, an object { url, username?, password?, tls? }, a cluster { cluster: [urls], ... } or an ioredis client (got a plain object without url)',
    )
  })

  it('refuses a Redis URL it could not connect with at once, and says where and why it could not connect', async () => {
    for (const url of [
      'http://127.0.0.1:6379',
      'not a url',
      'redis://:secret-pw@/0',
      'redis://127.0.0.1:6379/x',
    ]) {
      const err = thrown(() => new Dispatcher({ redis: url, pool: 'p' }))
      expect(err.code).toBe('INVALID_ARGUMENT')
      expect(err.message).toMatch(/^redis must be a URL redis:\/\/\[user:password@\]host/)
      expect(err.message).not.toContain('secret-pw')
    }
    const d = new Dispatcher({ redis: 'redis://127.0.0.1:1/0', pool: 'p', connectTimeoutMs: 300 })
    const err = (await d.submit(1).catch((e: unknown) => e)) as HedgeyardError
    await d.close()
    expect(err.code).toBe('REDIS_UNAVAILABLE')
    expect(err.message).toMatch(
      /^Redis at redis:\/\/127\.0\.0\.1:1\/0 did not become ready within 300 ms \(last error: .*ECONNREFUSED/,
    )
  })

  it('refuses a database index the server does not have, instead of using database 0', async () => {
    const url = `${redisUrl().replace(/\/\d*$/, '')}/99`
    const pool = uniquePool('db99')
    const d = new Dispatcher({ redis: url, pool })
    const err = (await d.submit(1).catch((e: unknown) => e)) as HedgeyardError
    await d.close()
    expect(err.code).toBe('INVALID_ARGUMENT')
    expect(err.message).toContain('names database 99')
    await expect(startWorkers({ redis: url, pool, handler })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining('database 99'),
    })
    // Nothing was registered in database 0 instead.
    expect(await inspectPool({ redis: redisUrl(), pool })).toEqual([])
  })

  it('accepts a client without keyPrefix as a template', async () => {
    const template = new Redis(redisUrl(), { lazyConnect: true })
    clients.push(template)
    const pool = uniquePool('template')
    const group = await startWorkers({ redis: template, pool, handler })
    const d = new Dispatcher<number, number>({ redis: template, pool })
    try {
      expect(await d.submit(5)).toBe(5)
    } finally {
      await d.close()
      await group.close()
    }
  })
})
