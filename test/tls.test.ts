import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { CLI, spawnWorker, uniquePool, type WorkerProcess } from '@hedgeyard/testing/helpers'
import { freePort, type LocalRedis, startLocalRedis } from '@hedgeyard/testing/redis-server'
import { makeTestCerts, type TestCerts } from '@hedgeyard/testing/tls-certs'
import {
  Dispatcher,
  type HedgeyardError,
  inspectPool,
  isHedgeyardError,
  startWorkers,
  type WorkerGroup,
} from 'hedgeyard'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

// A redis-server of the test's own with a TLS port that asks clients for a certificate
// (tls-auth-clients yes), and certificates made with openssl for the run.

const run = promisify(execFile)
let certs: TestCerts
let redis: LocalRedis
let url: string
const closers: (() => unknown)[] = []
beforeAll(async () => {
  certs = makeTestCerts()
  const tlsPort = await freePort()
  redis = await startLocalRedis([
    '--tls-port',
    String(tlsPort),
    '--tls-cert-file',
    certs.serverCert,
    '--tls-key-file',
    certs.serverKey,
    '--tls-ca-cert-file',
    certs.caCert,
    '--tls-auth-clients',
    'yes',
  ])
  url = `rediss://127.0.0.1:${tlsPort}`
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(async () => {
  await redis.stop()
  certs.remove()
})

/** What a call fails with; fails the test when it succeeds. */
async function failure(promise: Promise<unknown>): Promise<HedgeyardError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isHedgeyardError(err)) throw new Error(`expected a HedgeyardError, got ${String(err)}`)
  return err
}

async function cli(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({
      code: e.code,
      stdout: e.stdout,
      stderr: e.stderr,
    }),
  )
}

describe('TLS with a CA and a client certificate of our own', () => {
  it('workers and a producer connect with the CA, certificate and key files, and a job goes through', async () => {
    const pool = uniquePool('tls')
    const tls = { caFile: certs.caCert, certFile: certs.clientCert, keyFile: certs.clientKey }
    const group: WorkerGroup = await startWorkers({
      redis: { url, tls },
      pool,
      handler: (req: unknown) => req,
      blockMs: 200,
    })
    closers.push(() => group.close())
    const d = new Dispatcher({ redis: { url, tls }, pool })
    closers.push(() => d.close())
    expect(await d.submit({ n: 1 })).toEqual({ n: 1 })
    expect((await inspectPool({ redis: { url, tls }, pool })).length).toBe(1)
  })

  it('refuses a server whose certificate the CA did not sign, at once, with REDIS_TLS', async () => {
    const pool = uniquePool('tls-ca')
    const wrongCa = { caFile: certs.otherCaCert, certFile: certs.clientCert, keyFile: certs.clientKey }
    // A connect timeout far longer than the test waits: the failure cannot be a timeout.
    const d = new Dispatcher({ redis: { url, tls: wrongCa }, pool, connectTimeoutMs: 60_000 })
    closers.push(() => d.close())
    const err = await failure(d.submit(1))
    expect({ code: err.code, message: err.message }).toEqual({
      code: 'REDIS_TLS',
      message:
        'connecting to Redis failed: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)',
    })
    // Node's own CAs do not know ours either.
    const noCa = { certFile: certs.clientCert, keyFile: certs.clientKey }
    expect((await failure(inspectPool({ redis: { url, tls: noCa }, pool }))).code).toBe('REDIS_TLS')
    expect((await failure(startWorkers({ redis: { url, tls: wrongCa }, pool, handler: () => 1 }))).code).toBe(
      'REDIS_TLS',
    )
  })

  it('a server that asks for a client certificate refuses a connection without one: REDIS_TLS', async () => {
    const err = await failure(
      inspectPool({ redis: { url, tls: { caFile: certs.caCert } }, pool: uniquePool('tls-nocert') }),
    )
    expect(err.code).toBe('REDIS_TLS')
    expect(err.message).toMatch(/alert certificate required.*\(ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED\)$/s)
  })

  it('an unreadable CA file fails at once, from the constructor, naming the option and the path', () => {
    const missing = `${certs.dir}/missing-ca.pem`
    let thrown: unknown
    try {
      new Dispatcher({ redis: { url, tls: { caFile: missing } }, pool: 'p' })
    } catch (err) {
      thrown = err
    }
    expect(isHedgeyardError(thrown) && { code: thrown.code, message: thrown.message }).toEqual({
      code: 'INVALID_ARGUMENT',
      message: `redis.tls.caFile: cannot read '${missing}' (ENOENT)`,
    })
  })
})

describe('hedgeyard with --tls-ca, --tls-cert, --tls-key and HEDGEYARD_TLS_*', () => {
  const running: WorkerProcess[] = []
  afterEach(async () => {
    await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
  })

  it('a worker from the flags and a submit from the environment variables', async () => {
    const pool = uniquePool('tls-cli')
    running.push(
      await spawnWorker({
        pool,
        handler: 'echo.js',
        redis: url,
        extraArgs: ['--tls-ca', certs.caCert, '--tls-cert', certs.clientCert, '--tls-key', certs.clientKey],
      }),
    )
    const env = {
      HEDGEYARD_REDIS_URL: url,
      HEDGEYARD_TLS_CA: certs.caCert,
      HEDGEYARD_TLS_CERT: certs.clientCert,
      HEDGEYARD_TLS_KEY: certs.clientKey,
    }
    const submitted = await cli(['submit', '--pool', pool, '{"n":7}'], env)
    expect(submitted.stderr).toBe('')
    expect(JSON.parse(submitted.stdout)).toMatchObject({ echo: { n: 7 } })
  })

  it('names the flag or the variable it cannot use, and the wrong CA as REDIS_TLS', async () => {
    const missing = `${certs.dir}/missing.pem`
    const files = ['--tls-cert', certs.clientCert, '--tls-key', certs.clientKey]
    expect(await cli(['inspect', '--redis', url, '--tls-ca', missing, ...files])).toEqual({
      code: 1,
      stdout: '',
      stderr: `error INVALID_ARGUMENT: --tls-ca: cannot read '${missing}' (ENOENT)\n`,
    })
    expect((await cli(['inspect', '--redis', url, ...files], { HEDGEYARD_TLS_CA: missing })).stderr).toBe(
      `error INVALID_ARGUMENT: HEDGEYARD_TLS_CA: cannot read '${missing}' (ENOENT)\n`,
    )
    expect((await cli(['inspect', '--redis', url, '--tls-cert', certs.clientCert])).stderr).toBe(
      'error INVALID_ARGUMENT: --tls-cert and --tls-key go together (a client certificate and its key)\n',
    )
    expect((await cli(['inspect', '--redis', redis.url, '--tls-ca', certs.caCert])).stderr).toBe(
      'error INVALID_ARGUMENT: --tls-ca, --tls-cert and --tls-key are for a TLS connection: use a rediss:// URL\n',
    )
    expect(
      (await cli(['exporter', '--redis', url, '--tls-ca', certs.otherCaCert, ...files, '--port', '0']))
        .stderr,
    ).toBe(
      'error REDIS_TLS: connecting to Redis failed: self-signed certificate in certificate chain (SELF_SIGNED_CERT_IN_CHAIN)\n',
    )
  })
})
