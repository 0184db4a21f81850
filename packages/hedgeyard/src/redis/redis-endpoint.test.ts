import { makeTestCerts } from '@hedgeyard/testing/tls-certs'
import { afterAll, describe, expect, it } from 'vitest'
import { HedgeyardError } from '../protocol/errors.js'
import { checkRedisInput } from './connection.js'
import { endpointConnection, type RedisEndpoint } from './redis-endpoint.js'

const certs = makeTestCerts()
afterAll(() => certs.remove())

/** What ioredis gets for `endpoint`, or the message of the INVALID_ARGUMENT it is refused with. */
function optionsOf(endpoint: RedisEndpoint): unknown {
  try {
    checkRedisInput(endpoint)
    return endpointConnection(endpoint)
  } catch (err) {
    if (!(err instanceof HedgeyardError) || err.code !== 'INVALID_ARGUMENT') throw err
    return err.message
  }
}

describe('a Redis endpoint: a URL with credentials and TLS files apart', () => {
  it('takes the user and password apart from the URL, and refuses one given twice or a user without a password', () => {
    // In the URL ioredis gets: it takes a URL's user and password over its options'.
    expect(
      optionsOf({ url: 'redis://127.0.0.1:6379/2', username: 'hy-worker', password: 'p@ss:w/rd%' }),
    ).toEqual({
      url: 'redis://hy-worker:p%40ss%3Aw%2Frd%25@127.0.0.1:6379/2',
      options: {},
    })
    // ioredis decodes it back as it was given.
    const { url } = endpointConnection({
      url: 'redis://127.0.0.1:6379',
      username: 'u',
      password: 'p@ss:w/rd%',
    })
    expect(decodeURIComponent(new URL(url).password)).toBe('p@ss:w/rd%')
    expect(optionsOf({ url: 'redis://hy-worker@127.0.0.1:6379', password: 'pw-1' })).toEqual({
      url: 'redis://hy-worker:pw-1@127.0.0.1:6379',
      options: {},
    })
    expect(optionsOf({ url: 'redis://:pw-1@127.0.0.1:6379', password: 'pw-2' })).toBe(
      'redis: the password is in both the URL and redis.password: give it once',
    )
    expect(optionsOf({ url: 'redis://127.0.0.1:6379', username: 'hy-worker' })).toBe(
      'redis: a username needs a password (redis.password or the URL)',
    )
    // A password of the wrong type is not echoed: it may be a secret all the same.
    expect(optionsOf({ url: 'redis://127.0.0.1:6379', password: 12345 as unknown as string })).toBe(
      'redis.password must be a non-empty string (got number)',
    )
    expect(optionsOf({ url: 'redis://127.0.0.1:6379', pasword: 'x' } as RedisEndpoint)).toBe(
      "redis: unknown option 'pasword' (allowed: url, username, password, tls)",
    )
    expect(optionsOf({ url: 'http://127.0.0.1:6379' })).toMatch(
      /^redis\.url must be a URL redis:\/\/\[user:password@\]/,
    )
  })

  it('reads the TLS files at once, and names the option and the file it cannot use', () => {
    const url = 'rediss://127.0.0.1:6380'
    const tls = { caFile: certs.caCert, certFile: certs.clientCert, keyFile: certs.clientKey }
    expect(optionsOf({ url, tls })).toEqual({
      url: `${url}`,
      options: {
        tls: {
          ca: expect.stringContaining('BEGIN CERTIFICATE'),
          cert: expect.stringContaining('BEGIN CERTIFICATE'),
          key: expect.stringContaining('PRIVATE KEY'),
        },
      },
    })
    const missing = `${certs.dir}/no-such-ca.pem`
    expect(optionsOf({ url, tls: { caFile: missing } })).toBe(
      `redis.tls.caFile: cannot read '${missing}' (ENOENT)`,
    )
    expect(
      optionsOf({ url, tls: { caFile: certs.caCert, certFile: certs.dir, keyFile: certs.clientKey } }),
    ).toBe(`redis.tls.certFile: cannot read '${certs.dir}' (EISDIR)`)
    expect(optionsOf({ url, tls: { caFile: certs.clientKey } })).toMatch(
      new RegExp(`^redis\\.tls\\.caFile: '${certs.clientKey}' holds no PEM certificate \\(`),
    )
    expect(optionsOf({ url, tls: { certFile: certs.clientCert, keyFile: certs.serverKey } })).toMatch(
      new RegExp(
        `^redis\\.tls: the certificate '${certs.clientCert}' and the key '${certs.serverKey}' cannot be used together \\(.*key values mismatch`,
      ),
    )
    expect(optionsOf({ url, tls: { certFile: certs.clientCert } })).toBe(
      'redis.tls: certFile and keyFile go together (a client certificate and its key)',
    )
    expect(optionsOf({ url, tls: { ca: certs.caCert } as never })).toBe(
      "redis.tls: unknown option 'ca' (allowed: caFile, certFile, keyFile)",
    )
    expect(optionsOf({ url: 'redis://127.0.0.1:6379', tls: { caFile: certs.caCert } })).toBe(
      'redis.tls is for a TLS connection: use a rediss:// URL (got redis://127.0.0.1:6379)',
    )
  })
})
