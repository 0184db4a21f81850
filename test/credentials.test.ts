import { execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { createRoleUser, ROLE_PASSWORD, roleUrl } from '@hedgeyard/testing/acl-roles'
import { CLI, eventually, FIXTURES, uniquePool } from '@hedgeyard/testing/helpers'
import { type LocalRedis, startLocalRedis } from '@hedgeyard/testing/redis-server'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'

// The ACL users of docs/security.md on a redis-server of the test's own, from the command line: the
// password in the URL or from HEDGEYARD_REDIS_PASSWORD, and in nothing hedgeyard prints. The
// library's side (logs at debug level, errors) is packages/hedgeyard/src/redis/credentials.test.ts.

const run = promisify(execFile)
let server: LocalRedis
let admin: Redis
const pool = uniquePool('creds')
const closers: (() => unknown)[] = []
beforeAll(async () => {
  server = await startLocalRedis()
  admin = new Redis(server.url)
  for (const role of ['producer', 'worker', 'monitor'] as const) await createRoleUser(admin, role, pool)
  // A user that is switched off: Redis refuses its right password with WRONGPASS.
  await admin.call('ACL', 'SETUSER', 'hy-off', 'reset', 'off', `>${ROLE_PASSWORD}`, '~*', '+@all')
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(async () => {
  admin.disconnect()
  await server.stop()
})

describe('the password never shows', () => {
  it('in what hedgeyard prints: a worker at debug level, submit with HEDGEYARD_REDIS_PASSWORD, a refused inspect', async () => {
    // spawnWorker runs at info: this worker logs at debug.
    const worker = spawn(
      process.execPath,
      [
        CLI,
        'worker',
        '--redis',
        roleUrl(server.port, 'worker'),
        '--pool',
        pool,
        '--handler',
        join(FIXTURES, 'echo.js'),
      ],
      { env: { ...process.env, HEDGEYARD_LOG_LEVEL: 'debug' }, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let output = ''
    const collect = (d: Buffer) => {
      output += d
    }
    worker.stdout?.on('data', collect)
    worker.stderr?.on('data', collect)
    const exited = new Promise((resolve) => worker.once('exit', resolve))
    closers.push(() => worker.kill('SIGKILL'))
    await eventually(() => output.includes('workers started'), 15_000)
    const cli = (args: string[], env: Record<string, string> = {}) =>
      run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 30_000 }).then(
        ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({
          code: e.code,
          stdout: e.stdout,
          stderr: e.stderr,
        }),
      )
    // The URL names the user; the password comes from the environment, out of the command line.
    const submitted = await cli(
      ['submit', '--redis', `redis://hy-producer@127.0.0.1:${server.port}`, '--pool', pool, '{"n":2}'],
      {
        HEDGEYARD_REDIS_PASSWORD: ROLE_PASSWORD,
      },
    )
    expect(submitted.stderr).toBe('')
    expect(JSON.parse(submitted.stdout)).toMatchObject({ echo: { n: 2 } })
    const twice = await cli(['inspect', '--redis', roleUrl(server.port, 'monitor'), '--pool', pool], {
      HEDGEYARD_REDIS_PASSWORD: ROLE_PASSWORD,
    })
    expect(twice.stderr).toBe(
      'error INVALID_ARGUMENT: HEDGEYARD_REDIS_PASSWORD is set and the Redis URL has a password too: give it once\n',
    )
    const refused = await cli([
      'inspect',
      '--redis',
      `redis://hy-off:${ROLE_PASSWORD}@127.0.0.1:${server.port}`,
      '--pool',
      pool,
    ])
    expect(refused.stderr).toBe(
      'error REDIS_AUTH: connecting to Redis failed: WRONGPASS invalid username-password pair or user is disabled.\n',
    )
    const bad = await cli(['inspect', '--redis', `redis://hy-monitor:${ROLE_PASSWORD}@/0`, '--pool', pool])
    expect(bad.stderr).toBe(
      "error INVALID_ARGUMENT: redis must be a URL redis://[user:password@]host[:port][/db] (rediss:// for TLS) (got 'redis://hy-monitor:****@/0')\n",
    )
    worker.kill('SIGTERM')
    await exited
    const printed = [output, submitted.stdout, submitted.stderr, twice.stderr, refused.stderr, bad.stderr]
    expect(output).toContain('"level":20')
    expect(printed.filter((text) => text.includes(ROLE_PASSWORD))).toEqual([])
  })
})
