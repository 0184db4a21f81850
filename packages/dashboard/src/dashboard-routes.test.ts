import { request } from 'node:http'
import { client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import Fastify, { type FastifyInstance } from 'fastify'
import { poolKeys, startWorkers } from 'hedgeyard'
import { createConnection, registerWorkers, workerKey } from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { dashboardRoutes } from './dashboard-routes.js'

const c = client()
const apps: FastifyInstance[] = []
afterEach(async () => {
  await Promise.all(apps.splice(0).map((app) => app.close()))
})
afterAll(() => c.disconnect())

async function serve(pool: string, intervalMs = 1_000): Promise<string> {
  const app = Fastify()
  apps.push(app)
  dashboardRoutes(app, { redis: redisUrl(), pool, intervalMs, basePath: '/dash' })
  return `${await app.listen({ port: 0, host: '127.0.0.1' })}/dash`
}

/** An open event stream: the ids and events it has received so far. */
function watch(
  url: string,
): Promise<{ events: { id: number; event: string; data: unknown }[]; close(): void }> {
  return new Promise((resolve, reject) => {
    const events: { id: number; event: string; data: unknown }[] = []
    const req = request(`${url}/events`, (res) => {
      let buffer = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => {
        buffer += chunk
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const fields = Object.fromEntries(
            buffer
              .slice(0, end)
              .split('\n')
              .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]),
          )
          buffer = buffer.slice(end + 2)
          if (fields.event)
            events.push({
              id: Number(fields.id),
              event: fields.event,
              data: JSON.parse(fields.data ?? 'null'),
            })
        }
      })
      resolve({ events, close: () => req.destroy() })
    })
    req.on('error', reject)
    req.end()
  })
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  })
  return { status: res.status, json: (await res.json()) as Record<string, unknown> }
}

describe('dashboard routes', () => {
  it('refuses bad options, naming them', () => {
    const app = Fastify()
    expect(() => dashboardRoutes(app, { redis: redisUrl(), pool: 'a b' })).toThrow(
      /pool must be 1-100 characters/,
    )
    expect(() => dashboardRoutes(app, { redis: redisUrl(), pool: 'p', basePath: 'dash/' })).toThrow(
      /basePath must be '' or a path such as '\/dashboard'/,
    )
    expect(() => dashboardRoutes(app, { redis: redisUrl(), pool: 'p', intervalMs: 5 })).toThrow(
      /intervalMs must be a whole number of ms from 100 to 60000 \(got 5\)/,
    )
  })

  it('serves the page and its files under its base path, which redirects to itself with a slash', async () => {
    const url = await serve(uniquePool('dash-page'))
    const page = await fetch(`${url}/`)
    expect(page.headers.get('content-type')).toMatch(/^text\/html/)
    expect(page.headers.get('content-security-policy')).toContain("script-src 'self'")
    const html = await page.text()
    for (const file of html.matchAll(/(?:href|src)="([a-z]+\.(?:js|css))"/g)) {
      expect((await fetch(`${url}/${file[1]}`)).status).toBe(200)
    }
    const bare = await fetch(url, { redirect: 'manual' })
    expect([bare.status, bare.headers.get('location')]).toEqual([308, 'dash/'])
  })

  it('answers bad input with a 400 naming the field, an unknown worker with 404, a dead one with 409', async () => {
    const pool = uniquePool('dash-api')
    const url = await serve(pool)
    const bad = [
      ['/api/drain', '[1]', /the body must be a JSON object such as \{"workerId": "w-1"\}/],
      ['/api/drain', { workerId: 'a b' }, /workerId must be a worker's id/],
      ['/api/drain', '{"workerId":', /not valid JSON/],
      [
        '/api/dead/retry',
        { deadIds: [] },
        /deadIds must be an array of 1 to 1000 dead-letter ids \(got \[\]\)/,
      ],
      [
        '/api/dead/purge',
        { deadIds: ['x'] },
        /deadIds must hold dead-letter ids such as 1700000000000-0 \(got "x"\)/,
      ],
    ] as const
    for (const [path, body, message] of bad) {
      const res = await post(`${url}${path}`, body)
      expect(res.status).toBe(400)
      expect(res.json).toMatchObject({
        error: { code: 'INVALID_ARGUMENT', message: expect.stringMatching(message) },
      })
    }
    const count = await fetch(`${url}/api/dead?count=5000`)
    expect(count.status).toBe(400)
    expect(await count.json()).toMatchObject({ error: { message: expect.stringMatching(/^count must be/) } })

    expect(await post(`${url}/api/drain`, { workerId: 'nobody-1' })).toEqual({
      status: 404,
      json: { error: { code: 'NOT_FOUND', message: `no worker 'nobody-1' in pool '${pool}'` } },
    })
    // A worker whose lease ran out: registered, but nothing of it runs.
    const conn = createConnection(redisUrl(), 'command', 'hy:test-dash')
    await conn.connect()
    await registerWorkers(
      conn,
      poolKeys('hy', pool),
      { leaseMs: 60_000, host: 'gone', pid: 1, concurrency: 1, capacity: 2 },
      ['gone-1'],
    )
    conn.disconnect()
    await c.zadd(poolKeys('hy', pool).alive, 1, 'gone-1')
    const dead = await post(`${url}/api/drain`, { workerId: 'gone-1' })
    expect(dead.status).toBe(409)
    expect(dead.json).toMatchObject({
      error: { code: 'NOT_ALIVE', message: expect.stringContaining('not alive') },
    })
  })

  it('drains a live worker: it leaves the pool', async () => {
    const pool = uniquePool('dash-drain')
    const url = await serve(pool)
    const group = await startWorkers({ redis: redisUrl(), pool, idPrefix: 'dd', handler: async () => 'ok' })
    expect(await post(`${url}/api/drain`, { workerId: 'dd-1' })).toEqual({
      status: 200,
      json: { draining: 'dd-1' },
    })
    await group.done
    expect(await c.zscore(poolKeys('hy', pool).load, 'dd-1')).toBeNull()
  })

  it('takes JSON bodies only: what a form on another site can post drains nothing', async () => {
    const pool = uniquePool('dash-form')
    const url = await serve(pool)
    const group = await startWorkers({ redis: redisUrl(), pool, idPrefix: 'df', handler: async () => 'ok' })
    // The three content types an HTML form can send.
    const forms: [string, string][] = [
      ['application/x-www-form-urlencoded', 'workerId=df-1'],
      [
        'multipart/form-data; boundary=x',
        '--x\r\ncontent-disposition: form-data; name="workerId"\r\n\r\ndf-1\r\n--x--\r\n',
      ],
      ['text/plain', '{"workerId":"df-1"}'],
    ]
    for (const [type, body] of forms) {
      const res = await fetch(`${url}/api/drain`, { method: 'POST', headers: { 'content-type': type }, body })
      expect({ type, status: res.status }).toEqual({
        type,
        status: expect.toSatisfy((s: number) => s >= 400),
      })
      expect(await res.json()).toMatchObject({ error: { code: 'INVALID_ARGUMENT' } })
    }
    expect(await c.hget(workerKey(poolKeys('hy', pool), 'df-1'), 'state')).toBe('active')
    await group.close()
  })

  it('polls once for every page, stops while none watches, and closes with pages open', async () => {
    const pool = uniquePool('dash-feed')
    const url = await serve(pool, 200)
    const pages = await Promise.all([watch(url), watch(url), watch(url)])
    await eventually(() => pages.every((p) => p.events.length >= 4), 10_000)
    // The same numbered snapshots reach every page: one read of the pool each time.
    const ids = (p: (typeof pages)[number]) => new Set(p.events.map((e) => e.id))
    const [a, b] = [ids(pages[0] as (typeof pages)[number]), ids(pages[1] as (typeof pages)[number])]
    expect([...a].filter((id) => b.has(id)).length).toBeGreaterThanOrEqual(3)
    expect(pages[0]?.events[1]).toMatchObject({
      event: 'snapshot',
      data: { pool, workers: [], deadLetters: 0 },
    })
    for (const p of pages) p.close()
    const lastId = Math.max(...pages.flatMap((p) => p.events.map((e) => e.id)))
    // Five intervals with no page: no read, so the next page's first snapshot follows the last one.
    await new Promise((r) => setTimeout(r, 1_000))
    const next = await watch(url)
    await eventually(() => next.events.length > 0, 5_000)
    expect(next.events[0]?.id).toBeLessThanOrEqual(lastId + 2)
    // Closing the server ends the open stream instead of waiting for it.
    await (apps.pop() as FastifyInstance).close()
  })
})
