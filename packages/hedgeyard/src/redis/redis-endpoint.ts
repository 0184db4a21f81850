import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { RedisOptions } from 'ioredis'
import { invalidArgument } from '../protocol/errors.js'
import { checkKnownOptions, describe } from '../protocol/validate.js'

/**
 * A Redis server named by a URL, with what is better kept out of the URL: the ACL user's password
 * (out of command lines and logs) and the files of a TLS connection.
 */
export interface RedisEndpoint {
  /** `redis://host:port/db`, or `rediss://host:port/db` for TLS. */
  url: string
  /** The ACL user, when the URL names none. */
  username?: string
  /** The password, when the URL has none. */
  password?: string
  /** The files of a TLS connection (a `rediss://` URL). */
  tls?: RedisTlsFiles
}

/** PEM files of a TLS connection to Redis, read when a connection is made. */
export interface RedisTlsFiles {
  /** CA certificates the server's certificate must chain to, in place of Node's bundled ones. */
  caFile?: string
  /** The client's certificate, for a server with `tls-auth-clients`; needs `keyFile`. */
  certFile?: string
  /** The private key of `certFile`. */
  keyFile?: string
}

const ENDPOINT_OPTIONS = ['url', 'username', 'password', 'tls'] as const
const TLS_OPTIONS = ['caFile', 'certFile', 'keyFile'] as const

/** Whether `input` is a plain options object (not an ioredis client, which has `duplicate`). */
export function isRedisEndpoint(input: unknown): input is RedisEndpoint {
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as { duplicate?: unknown }).duplicate !== 'function' &&
    'url' in input
  )
}

/**
 * Checks an endpoint's options and reads its TLS files, for `new Redis(url, options)`: the URL
 * with the credentials in it (ioredis takes a URL's user and password over its options', even a
 * password the URL leaves empty), and the TLS options. A credential given twice (in the URL and
 * apart) or half (a user without a password) is refused, as is a TLS file for a `redis://` URL:
 * each would connect, but not as the caller meant.
 * @throws HedgeyardError INVALID_ARGUMENT naming the option (and the file that cannot be read)
 */
export function endpointConnection(endpoint: RedisEndpoint): { url: string; options: RedisOptions } {
  checkKnownOptions('redis', endpoint, ENDPOINT_OPTIONS)
  const url = new URL(endpoint.url)
  for (const field of ['username', 'password'] as const) {
    const value = endpoint[field]
    if (value === undefined) continue
    // Never echoed: it may be the password.
    if (typeof value !== 'string' || value === '') {
      throw invalidArgument(`redis.${field} must be a non-empty string (got ${typeof value})`)
    }
    if (url[field] !== '') {
      throw invalidArgument(`redis: the ${field} is in both the URL and redis.${field}: give it once`)
    }
    // Encoded whole: the URL's setter leaves a '%' as it is, which ioredis's decoding then refuses.
    url[field] = encodeURIComponent(value)
  }
  if (url.username !== '' && url.password === '') {
    throw invalidArgument('redis: a username needs a password (redis.password or the URL)')
  }
  const options: RedisOptions = endpoint.tls === undefined ? {} : { tls: tlsOptions(endpoint.tls, url) }
  return { url: url.toString(), options }
}

/**
 * The TLS options of a `rediss://` connection from its files, read and checked now.
 * @throws HedgeyardError INVALID_ARGUMENT naming the option (and the file that cannot be read)
 */
export function tlsOptions(tls: unknown, url: URL): Record<string, string> {
  if (typeof tls !== 'object' || tls === null) {
    throw invalidArgument(
      `redis.tls must be an object { caFile?, certFile?, keyFile? } (got ${describe(tls)})`,
    )
  }
  checkKnownOptions('redis.tls', tls, TLS_OPTIONS)
  if (url.protocol !== 'rediss:') {
    throw invalidArgument(
      `redis.tls is for a TLS connection: use a rediss:// URL (got ${url.protocol}//${url.host})`,
    )
  }
  const files = tls as RedisTlsFiles
  if ((files.certFile === undefined) !== (files.keyFile === undefined)) {
    throw invalidArgument('redis.tls: certFile and keyFile go together (a client certificate and its key)')
  }
  const out: Record<string, string> = {}
  if (files.caFile !== undefined) {
    out.ca = readPem('redis.tls.caFile', files.caFile)
    try {
      new X509Certificate(out.ca)
    } catch (err) {
      throw invalidArgument(
        `redis.tls.caFile: '${files.caFile}' holds no PEM certificate (${(err as Error).message})`,
      )
    }
  }
  if (files.certFile !== undefined && files.keyFile !== undefined) {
    out.cert = readPem('redis.tls.certFile', files.certFile)
    out.key = readPem('redis.tls.keyFile', files.keyFile)
    try {
      createSecureContext({ cert: out.cert, key: out.key })
    } catch (err) {
      throw invalidArgument(
        `redis.tls: the certificate '${files.certFile}' and the key '${files.keyFile}' cannot be used together (${(err as Error).message})`,
      )
    }
  }
  return out
}

function readPem(field: string, path: unknown): string {
  if (typeof path !== 'string' || path === '') {
    throw invalidArgument(`${field} must be the path of a PEM file (got ${describe(path)})`)
  }
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw invalidArgument(
      `${field}: cannot read '${path}' (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    )
  }
}
