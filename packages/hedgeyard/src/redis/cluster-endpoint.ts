import type { RedisOptions } from 'ioredis'
import { invalidArgument } from '../protocol/errors.js'
import { checkKnownOptions, describe } from '../protocol/validate.js'
import { type RedisTlsFiles, tlsOptions } from './redis-endpoint.js'

/**
 * A Redis Cluster named by some of its nodes: `redis+cluster://h1:7000,h2:7001` as one URL, or
 * `{ cluster: ['redis://h1:7000', 'redis://h2:7001'] }`, with the credentials and TLS files of
 * {@link RedisEndpoint} beside them. The nodes are only where to start: the client learns the
 * others, and which of them owns each slot, from the cluster itself.
 */
export interface RedisCluster {
  /** URLs `redis://host:port` (`rediss://` for TLS) of some nodes, without credentials. */
  cluster: string[]
  /** The ACL user. */
  username?: string
  /** The password. */
  password?: string
  /** The files of a TLS connection (`rediss://` URLs). */
  tls?: RedisTlsFiles
}

/** A cluster, checked: where to start and the options every node connection takes. */
export interface ClusterSpec {
  nodes: { host: string; port: number }[]
  /** Username, password and TLS, for every node connection. */
  options: Pick<RedisOptions, 'username' | 'password' | 'tls'>
  /** `redis+cluster://h1:7000,...` without credentials, for messages. */
  display: string
}

/** The schemes of a cluster URL: several nodes, comma-separated, in its host part. */
const CLUSTER_SCHEMES = ['redis+cluster:', 'rediss+cluster:'] as const

const CLUSTER_OPTIONS = ['cluster', 'username', 'password', 'tls'] as const
const ENDPOINT_OPTIONS = ['url', 'username', 'password', 'tls'] as const

/** Whether `url` names a cluster (`redis+cluster://` or `rediss+cluster://`). */
export function isClusterUrl(url: unknown): url is string {
  return typeof url === 'string' && CLUSTER_SCHEMES.some((s) => url.startsWith(`${s}//`))
}

/** Whether `input` is the object form `{ cluster: [...] }` (not an ioredis client, whose `cluster` is a command). */
export function isRedisCluster(input: unknown): input is RedisCluster {
  return (
    typeof input === 'object' &&
    input !== null &&
    typeof (input as { duplicate?: unknown }).duplicate !== 'function' &&
    'cluster' in input
  )
}

/**
 * The cluster `input` names (a cluster URL, `{ url: <cluster URL>, ... }` or `{ cluster }`), or
 * undefined for a single server. Reads the TLS files.
 * @throws HedgeyardError INVALID_ARGUMENT naming the field
 */
export function clusterSpecOf(input: unknown): ClusterSpec | undefined {
  if (isClusterUrl(input)) return fromUrl(input, 'redis', {})
  if (isRedisCluster(input)) return fromList(input)
  if (typeof input === 'object' && input !== null && isClusterUrl((input as { url?: unknown }).url)) {
    checkKnownOptions('redis', input, ENDPOINT_OPTIONS)
    const endpoint = input as { url: string } & Omit<RedisCluster, 'cluster'>
    return fromUrl(endpoint.url, 'redis.url', endpoint)
  }
  return undefined
}

/** `redis+cluster://[user:password@]h1:7000,h2:7001`: each node as a URL of its own. */
function fromUrl(url: string, field: string, apart: Omit<RedisCluster, 'cluster'>): ClusterSpec {
  const scheme = url.slice(0, url.indexOf('//'))
  const rest = url.slice(scheme.length + 2)
  const slash = rest.search(/[/?#]/)
  const authority = slash < 0 ? rest : rest.slice(0, slash)
  const tail = slash < 0 ? '' : rest.slice(slash)
  if (tail !== '' && tail !== '/' && tail !== '/0') {
    throw invalidArgument(
      `${field}: a cluster URL takes no database, path or query (a cluster has only database 0) (got '${tail}')`,
    )
  }
  const at = authority.lastIndexOf('@')
  const userinfo = at < 0 ? '' : authority.slice(0, at + 1)
  const hosts = authority.slice(at + 1).split(',')
  const nodeScheme = scheme === 'rediss+cluster:' ? 'rediss:' : 'redis:'
  const urls = hosts.map((h) => parseUrl(`${nodeScheme}//${userinfo}${h}`))
  if (hosts.some((h) => h === '') || urls.some((u) => u === undefined || u.hostname === '')) {
    throw invalidArgument(
      `${field} must be a URL redis+cluster://[user:password@]host:port,host:port,... (rediss+cluster:// for TLS) (got '${maskAuthority(url, userinfo)}')`,
    )
  }
  const first = urls[0] as URL
  const credentials = {
    ...(first.username === '' ? {} : { username: decodeURIComponent(first.username) }),
    ...(first.password === '' ? {} : { password: decodeURIComponent(first.password) }),
  }
  return spec(urls as URL[], credentials, apart, 'redis')
}

/** `{ cluster: ['redis://h1:7000', ...], username?, password?, tls? }`. */
function fromList(input: RedisCluster): ClusterSpec {
  checkKnownOptions('redis', input, CLUSTER_OPTIONS)
  const list: unknown = input.cluster
  if (!Array.isArray(list) || list.length === 0) {
    throw invalidArgument(
      `redis.cluster must be a non-empty array of node URLs ['redis://host:port', ...] (got ${describe(list)})`,
    )
  }
  const urls = list.map((item, i) => {
    const field = `redis.cluster[${i}]`
    const url = typeof item === 'string' ? parseUrl(item) : undefined
    if (
      url === undefined ||
      (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
      url.hostname === '' ||
      (url.pathname !== '' && url.pathname !== '/')
    ) {
      throw invalidArgument(
        `${field} must be a URL redis://host:port (rediss:// for TLS), without a database (got ${typeof item === 'string' ? `'${maskUrlText(item)}'` : describe(item)})`,
      )
    }
    if (url.username !== '' || url.password !== '') {
      throw invalidArgument(`${field}: give the credentials once, as redis.username and redis.password`)
    }
    return url
  })
  if (new Set(urls.map((u) => u.protocol)).size > 1) {
    throw invalidArgument('redis.cluster: every node URL must be redis://, or every one rediss:// (TLS)')
  }
  return spec(urls, {}, input, 'redis')
}

/** Credentials from the URL or apart (once), TLS files for rediss://. */
function spec(
  urls: URL[],
  inUrl: { username?: string; password?: string },
  apart: Omit<RedisCluster, 'cluster'>,
  field: string,
): ClusterSpec {
  const options: ClusterSpec['options'] = { ...inUrl }
  for (const name of ['username', 'password'] as const) {
    const value = apart[name]
    if (value === undefined) continue
    // Never echoed: it may be the password.
    if (typeof value !== 'string' || value === '') {
      throw invalidArgument(`${field}.${name} must be a non-empty string (got ${typeof value})`)
    }
    if (options[name] !== undefined) {
      throw invalidArgument(`${field}: the ${name} is in both the URL and ${field}.${name}: give it once`)
    }
    options[name] = value
  }
  if (options.username !== undefined && options.password === undefined) {
    throw invalidArgument(`${field}: a username needs a password (${field}.password or the URL)`)
  }
  const first = urls[0] as URL
  if (apart.tls !== undefined) options.tls = tlsOptions(apart.tls, first)
  else if (first.protocol === 'rediss:') options.tls = {}
  const nodes = urls.map((u) => ({
    host: u.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: Number(u.port || 6379),
  }))
  const display = `${first.protocol === 'rediss:' ? 'rediss' : 'redis'}+cluster://${urls.map((u) => u.host).join(',')}`
  return { nodes, options, display }
}

/** `new URL`, or undefined when it cannot be parsed. */
function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text)
  } catch {
    return undefined
  }
}

function maskAuthority(url: string, userinfo: string): string {
  if (!userinfo.includes(':')) return url
  return url.replace(userinfo, `${userinfo.slice(0, userinfo.indexOf(':'))}:****@`)
}

function maskUrlText(url: string): string {
  return url.replace(/:[^:@/]*@/, ':****@')
}
