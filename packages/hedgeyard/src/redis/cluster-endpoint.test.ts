import { makeTestCerts } from '@hedgeyard/testing/tls-certs'
import { afterAll, describe, expect, it } from 'vitest'
import { HedgeyardError } from '../protocol/errors.js'
import { clusterSpecOf } from './cluster-endpoint.js'
import { checkRedisInput } from './connection.js'

const certs = makeTestCerts()
afterAll(() => certs.remove())

/** The cluster `input` names, or the message of the INVALID_ARGUMENT it is refused with. */
function specOf(input: unknown): unknown {
  try {
    checkRedisInput(input)
    return clusterSpecOf(input)
  } catch (err) {
    if (!(err instanceof HedgeyardError) || err.code !== 'INVALID_ARGUMENT') throw err
    return err.message
  }
}

describe('a Redis Cluster as the redis option', () => {
  it('takes a redis+cluster:// URL of several nodes, with its credentials', () => {
    expect(specOf('redis+cluster://hy:p%40ss@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: '::1', port: 7002 },
      ],
      options: { username: 'hy', password: 'p@ss' },
      display: 'redis+cluster://10.0.0.1:7000,10.0.0.2:7001,[::1]:7002',
    })
    // A port left out is Redis's.
    expect(specOf('redis+cluster://h1')).toMatchObject({ nodes: [{ host: 'h1', port: 6379 }] })
    // rediss+cluster:// is TLS to every node; the CLI's { url, password, tls } form works too.
    expect(
      specOf({ url: 'rediss+cluster://h1:7000,h2:7000', password: 'pw', tls: { caFile: certs.caCert } }),
    ).toMatchObject({
      options: { password: 'pw', tls: { ca: expect.stringContaining('BEGIN CERTIFICATE') } },
    })
    expect(specOf('rediss+cluster://h1:7000')).toMatchObject({ options: { tls: {} } })
  })

  it('takes { cluster: [urls] } with the credentials beside them', () => {
    expect(
      specOf({ cluster: ['redis://h1:7000', 'redis://h2:7001'], username: 'hy', password: 'pw' }),
    ).toMatchObject({
      nodes: [
        { host: 'h1', port: 7000 },
        { host: 'h2', port: 7001 },
      ],
      options: { username: 'hy', password: 'pw' },
    })
  })

  it('refuses what would connect to something else than meant, naming the field', () => {
    expect(specOf('redis+cluster://h1:7000,h2:7001/2')).toMatch(
      /^redis: a cluster URL takes no database, path or query \(a cluster has only database 0\)/,
    )
    expect(specOf('redis+cluster://h1:7000,,h2:7001')).toMatch(/^redis must be a URL redis\+cluster:\/\//)
    expect(specOf('redis+cluster://u:secret@h1:notaport')).toMatch(/u:\*\*\*\*@/)
    expect(specOf('redis+cluster://u:secret@h1:notaport')).not.toMatch(/secret/)
    expect(specOf({ cluster: [] })).toMatch(/^redis\.cluster must be a non-empty array of node URLs/)
    expect(specOf({ cluster: 'redis://h1:7000' })).toMatch(/^redis\.cluster must be a non-empty array/)
    expect(specOf({ cluster: ['redis://h1:7000', 'http://h2:7001'] })).toMatch(
      /^redis\.cluster\[1\] must be a URL redis:\/\/host:port/,
    )
    expect(specOf({ cluster: ['redis://h1:7000/3'] })).toMatch(/^redis\.cluster\[0\] must be a URL/)
    expect(specOf({ cluster: ['redis://:pw@h1:7000'] })).toBe(
      'redis.cluster[0]: give the credentials once, as redis.username and redis.password',
    )
    expect(specOf({ cluster: ['redis://h1:7000', 'rediss://h2:7001'] })).toMatch(
      /every node URL must be redis:\/\/, or every one rediss:\/\//,
    )
    expect(specOf({ cluster: ['redis://h1:7000'], tls: { caFile: certs.caCert } })).toMatch(
      /^redis\.tls is for a TLS connection: use a rediss:\/\/ URL/,
    )
    expect(specOf({ url: 'redis+cluster://u:pw@h1:7000', password: 'pw2' })).toBe(
      'redis: the password is in both the URL and redis.password: give it once',
    )
    expect(specOf({ cluster: ['redis://h1:7000'], username: 'hy' })).toMatch(/a username needs a password/)
    expect(specOf({ cluster: ['redis://h1:7000'], db: 1 })).toMatch(/db/)
  })
})
