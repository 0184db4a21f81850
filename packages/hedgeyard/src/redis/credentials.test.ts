import { inspect } from 'node:util'
import { createRoleUser, ROLE_PASSWORD, roleUrl } from '@hedgeyard/testing/acl-roles'
import { uniquePool } from '@hedgeyard/testing/helpers'
import { type LocalRedis, startLocalRedis } from '@hedgeyard/testing/redis-server'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { inspectPool } from '../admin/inspect-pool.js'
import type { JobContext } from '../consumer/run-job.js'
import { startWorkers } from '../consumer/start-workers.js'
import { Dispatcher } from '../producer/dispatcher.js'
import { type HedgeyardError, isHedgeyardError } from '../protocol/errors.js'

// ACL users of docs/security.md on a redis-server of the test's own: workers and a producer log at
// debug level, and their password shows in no log line and in no error, however it was given.

let server: LocalRedis
let admin: Redis
const pool = uniquePool('creds')
const closers: (() => unknown)[] = []
beforeAll(async () => {
  server = await startLocalRedis()
  admin = new Redis(server.url)
  for (const role of ['producer', 'worker'] as const) await createRoleUser(admin, role, pool)
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

/** What a call fails with; fails the test when it succeeds. */
async function failure(promise: Promise<unknown>): Promise<HedgeyardError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  )
  if (!isHedgeyardError(err)) throw new Error(`expected a HedgeyardError, got ${String(err)}`)
  return err
}

/** Answers, or fails (a warning in the worker's log) when asked to. */
function handler(req: { fail?: boolean }, _ctx: JobContext) {
  if (req.fail) throw new Error('asked to fail')
  return req
}

describe('the password never shows', () => {
  it('in the logs of workers and a producer at debug level, nor in the errors they give, however it was given', async () => {
    const lines: string[] = []
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) })
    const group = await startWorkers({
      redis: roleUrl(server.port, 'worker'),
      pool,
      handler,
      logger,
      blockMs: 200,
    })
    closers.push(() => group.close())
    // The user and password in options, apart from the URL.
    const d = new Dispatcher({
      redis: { url: `redis://127.0.0.1:${server.port}`, username: 'hy-producer', password: ROLE_PASSWORD },
      pool,
      logger,
    })
    closers.push(() => d.close())
    expect(await d.submit({ n: 1 })).toEqual({ n: 1 })
    expect((await failure(d.submit({ fail: true }))).code).toBe('HANDLER_ERROR')

    // Refused credentials: the refused AUTH keeps its arguments in the error's cause, masked.
    const errors = [
      await failure(inspectPool({ redis: `redis://hy-off:${ROLE_PASSWORD}@127.0.0.1:${server.port}`, pool })),
      await failure(
        new Dispatcher({
          redis: { url: `redis://hy-off@127.0.0.1:${server.port}`, password: ROLE_PASSWORD },
          pool,
          logger,
        }).submit(1),
      ),
      await failure(
        startWorkers({ redis: `redis://hy-off:${ROLE_PASSWORD}@127.0.0.1:${server.port}`, pool, handler }),
      ),
    ]
    expect(errors.map((e) => e.code)).toEqual(['REDIS_AUTH', 'REDIS_AUTH', 'REDIS_AUTH'])
    expect((errors[0]?.cause as { command?: unknown } | undefined)?.command).toEqual({
      name: 'auth',
      args: ['****', '****'],
    })

    await group.close()
    await d.close()
    expect(lines.length).toBeGreaterThan(3)
    const shown = [...lines, ...errors.flatMap((e) => [inspect(e, { depth: 10 }), JSON.stringify(e.cause)])]
    expect(shown.filter((text) => text.includes(ROLE_PASSWORD))).toEqual([])
  })
})
