import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { redisUrl } from '@hedgeyard/testing/helpers'
import { HedgeyardError } from 'hedgeyard'
import { describe, expect, it } from 'vitest'
import { loadApiKeys, parseApiKeys } from './api-keys.js'
import { createGateway } from './gateway.js'
import { httpFailureOf } from './google-error.js'

describe('gateway options', () => {
  it('refuses to serve beyond this host without API keys, unless told to', async () => {
    expect(() => createGateway({ redis: redisUrl(), pool: 'p', host: '0.0.0.0' })).toThrow(
      /refusing to serve on 0\.0\.0\.0 without API keys/,
    )
    const open = createGateway({ redis: redisUrl(), pool: 'p', host: '0.0.0.0', insecureNoAuth: true })
    expect(open.config.apiKeys).toBe('none (--insecure-no-auth)')
    await open.close()
    const local = createGateway({ redis: redisUrl(), pool: 'p' })
    expect(local.config.apiKeys).toBe('none (loopback only)')
    await local.close()
  })

  it('prints its settings with the secrets masked', async () => {
    const g = createGateway({
      redis: 'redis://:hunter2-password@127.0.0.1:6379/0',
      pool: 'p',
      apiKeys: 'alice:alice-key-0123456789abcdef',
    })
    expect(JSON.stringify(g.config)).not.toMatch(/hunter2|alice-key/)
    expect(g.config).toMatchObject({ redis: 'redis://:****@127.0.0.1:6379/0', apiKeys: '1 (hashed)' })
    await g.close()
    // A cluster URL too (it is not a WHATWG URL); nothing connects before the first request.
    const c = createGateway({
      redis: 'redis+cluster://hy:hunter2-password@10.0.0.1:7000,10.0.0.2:7000',
      pool: 'p',
    })
    expect(c.config.redis).toBe('redis+cluster://hy:****@10.0.0.1:7000,10.0.0.2:7000')
    await c.close()
  })

  it('refuses bad numbers, naming them', () => {
    expect(() => createGateway({ redis: redisUrl(), pool: 'p', port: 70_000 })).toThrow(/port must be/)
    expect(() => createGateway({ redis: redisUrl(), pool: 'p', jobTtlMs: 5 })).toThrow(/jobTtlMs must be/)
  })
})

describe('health', () => {
  it('answers /healthz while it runs, and /readyz 503 with Retry-After while the pool has no live worker', async () => {
    const g = createGateway({ redis: redisUrl(), pool: `no-workers-${process.pid}` })
    try {
      expect((await g.app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' })
      const ready = await g.app.inject({ method: 'GET', url: '/readyz' })
      expect(ready.statusCode).toBe(503)
      expect(ready.headers['retry-after']).toBe('1')
      expect(ready.json()).toMatchObject({ error: { code: 503, status: 'UNAVAILABLE' } })
    } finally {
      await g.close()
    }
  })
})

describe('API keys', () => {
  it('reads tenants and keys from a file and a list, and finds the tenant of a key', () => {
    const file = join(tmpdir(), `keys-${process.pid}.txt`)
    writeFileSync(file, '# tenants\nalice:alice-key-0123456789abcdef\n\nbob-key-0123456789abcdef\n')
    const keys = loadApiKeys({ file, list: 'carol:carol-key-0123456789abcdef' })
    expect(keys.count).toBe(3)
    expect(keys.tenantOf('alice-key-0123456789abcdef')).toBe('alice')
    expect(keys.tenantOf('carol-key-0123456789abcdef')).toBe('carol')
    expect(keys.tenantOf('bob-key-0123456789abcdef')).toMatch(/^key-[0-9a-f]{8}$/)
    expect(keys.tenantOf('alice-key-0123456789abcdeX')).toBeUndefined()
    expect(keys.tenantOf(undefined)).toBeUndefined()
  })

  it('refuses a short key or a bad tenant name, naming the entry', () => {
    expect(() => parseApiKeys('alice:short', 'keys.txt')).toThrow(
      'keys.txt, entry 1: an API key must have at least 16 characters',
    )
    expect(() => parseApiKeys('a b:alice-key-0123456789abcdef', 'keys.txt')).toThrow(/tenant name/)
  })
})

describe('HTTP statuses of Hedgeyard errors', () => {
  it('maps a full pool and a quota to 429 with Retry-After, no worker to 503, a deadline to 504', () => {
    expect(httpFailureOf(new HedgeyardError('SATURATED', 'full'))).toMatchObject({
      httpCode: 429,
      retryAfterS: 1,
    })
    expect(httpFailureOf(new HedgeyardError('RATE_LIMITED', 'q', { retryAfterMs: 12_300 }))).toMatchObject({
      httpCode: 429,
      status: 'RESOURCE_EXHAUSTED',
      retryAfterS: 13,
    })
    expect(httpFailureOf(new HedgeyardError('NO_WORKERS', 'none'))).toMatchObject({
      httpCode: 503,
      status: 'UNAVAILABLE',
    })
    expect(httpFailureOf(new HedgeyardError('TIMEOUT', 't'))).toMatchObject({
      httpCode: 504,
      status: 'DEADLINE_EXCEEDED',
    })
    expect(httpFailureOf(new HedgeyardError('REDIS_UNAVAILABLE', 'r'))).toMatchObject({ httpCode: 503 })
  })

  it("passes the model's 400, 404 and 413 on to the client, and makes its 401 or 403 a 500", () => {
    const modelSaid = (remoteStatus: number) =>
      httpFailureOf(new HedgeyardError('HANDLER_ERROR', `UpstreamError: ${remoteStatus}`, { remoteStatus }))
    expect(modelSaid(400)).toMatchObject({ httpCode: 400, status: 'INVALID_ARGUMENT' })
    expect(modelSaid(404)).toMatchObject({ httpCode: 404, status: 'NOT_FOUND' })
    expect(modelSaid(413)).toMatchObject({ httpCode: 413 })
    // The workers' own key was refused: not the client's to fix.
    expect(modelSaid(403)).toMatchObject({ httpCode: 500 })
  })
})
