import { createServer, type Socket } from 'node:net'
import { freePort } from '@hedgeyard/testing/redis-server'
import { Redis, ReplyError } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { type ErrorCode, HedgeyardError } from '../protocol/errors.js'
import { classifyRedisError, redisFailure, replyPrefix } from './redis-failure.js'

// Replies as Redis 7.0 sends them (copied from redis-cli), a command's own and the same error
// raised by the command inside a script, which keeps the command's prefix.
const REPLIES: [reply: string, code: ErrorCode, prefix: string | undefined][] = [
  ["OOM command not allowed when used memory > 'maxmemory'.", 'REDIS_OOM', 'OOM'],
  [
    "OOM command not allowed when used memory > 'maxmemory'. script: ff967d0ae0e68b4f9e360fa91c54598bc25ad9b6, on @user_script:1.",
    'REDIS_OOM',
    'OOM',
  ],
  ["READONLY You can't write against a read only replica.", 'REDIS_READONLY', 'READONLY'],
  [
    "READONLY You can't write against a read only replica. script: ff967d0ae0e68b4f9e360fa91c54598bc25ad9b6, on @user_script:1.",
    'REDIS_READONLY',
    'READONLY',
  ],
  ['WRONGTYPE Operation against a key holding the wrong kind of value', 'REDIS_WRONGTYPE', 'WRONGTYPE'],
  [
    'WRONGTYPE Operation against a key holding the wrong kind of value script: 956ac7400b4485995027f6ca245f2a19788a2042, on @user_script:1.',
    'REDIS_WRONGTYPE',
    'WRONGTYPE',
  ],
  ["NOPERM this user has no permissions to run the 'evalsha' command", 'REDIS_NOPERM', 'NOPERM'],
  [
    'NOPERM this user has no permissions to access one of the keys used as arguments',
    'REDIS_NOPERM',
    'NOPERM',
  ],
  ['NOAUTH Authentication required.', 'REDIS_AUTH', 'NOAUTH'],
  ['WRONGPASS invalid username-password pair or user is disabled.', 'REDIS_AUTH', 'WRONGPASS'],
  [
    'BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.',
    'REDIS_BUSY',
    'BUSY',
  ],
  ['MOVED 3999 127.0.0.1:6381', 'REDIS_CLUSTER', 'MOVED'],
  ['ASK 3999 127.0.0.1:6381', 'REDIS_CLUSTER', 'ASK'],
  ['CLUSTERDOWN Hash slot not served', 'REDIS_CLUSTER', 'CLUSTERDOWN'],
  ['LOADING Redis is loading the dataset in memory', 'REDIS_UNAVAILABLE', 'LOADING'],
  [
    "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
    'REDIS_UNAVAILABLE',
    'MASTERDOWN',
  ],
  ['NOSCRIPT No matching script. Please use EVAL.', 'PROTOCOL_ERROR', 'NOSCRIPT'],
  [
    "NOGROUP No such key 'hy:{p}:q:w' or consumer group 'hy' in XREADGROUP with GROUP option script: 95ec0cc944c4eab0d6c50184c2b34f3c800f10bb, on @user_script:1.",
    'PROTOCOL_ERROR',
    'NOGROUP',
  ],
  [
    "ERR user_script:1: Script attempted to access nonexistent global variable 'nosuch' script: c843e952e50a3cb0d663a5593c03b89bbafb6aeb, on @user_script:1.",
    'PROTOCOL_ERROR',
    'ERR',
  ],
  // Redis 7.0 reports a key a script derives and the ACL user may not touch with ERR, not NOPERM.
  [
    "ERR The user executing the script can't access at least one of the keys mentioned in the command arguments script: aab45803ad5cab525fba07c8e516372e1b0667bf, on @user_script:1.",
    'PROTOCOL_ERROR',
    'ERR',
  ],
  // Refusals of Hedgeyard's scripts, raised with error(redis.error_reply(...)) before their first
  // write, carry the prefix of what they mean.
  [
    'WRONGTYPE hy:{p}:aff:s holds a hash, not a string script: eac9a6db7febf12c49dd1d9f3855721c849544f3, on @user_script:1.',
    'REDIS_WRONGTYPE',
    'WRONGTYPE',
  ],
  [
    'NOPERM dispatch: this user may not run XADD on hy:{p}:q:w script: 52de9a7050a66e4e584a3303e1756912fe56290b, on @user_script:1.',
    'REDIS_NOPERM',
    'NOPERM',
  ],
  ['ERR dispatch: worker id is not a valid id', 'PROTOCOL_ERROR', 'ERR'],
  // A transaction whose EXEC was refused is classified by the refusal Redis names; its prefix stays.
  [
    "EXECABORT Transaction discarded because of: NOPERM this user has no permissions to run the 'exec' command",
    'REDIS_NOPERM',
    'EXECABORT',
  ],
  ['EXECABORT Transaction discarded because of previous errors.', 'PROTOCOL_ERROR', 'EXECABORT'],
  // A reply without an upper-case first word has no prefix.
  ['dispatch: unknown record kind x at argument 7', 'PROTOCOL_ERROR', undefined],
  // A prefix is a whole first word: BUSYGROUP is not BUSY, nor OOMKILLED OOM.
  ['BUSYGROUP Consumer Group name already exists', 'PROTOCOL_ERROR', 'BUSYGROUP'],
  ['OOMKILLED something', 'PROTOCOL_ERROR', 'OOMKILLED'],
]

function systemError(code: string, message: string, syscall?: string): Error {
  return Object.assign(new Error(message), syscall === undefined ? { code } : { code, syscall })
}

class AbortError extends Error {
  override get name(): string {
    return 'AbortError'
  }
}

describe('classifyRedisError', () => {
  it.each(REPLIES)('%s -> %s', (reply, code, prefix) => {
    const err = new ReplyError(reply)
    expect(replyPrefix(err)).toBe(prefix)
    expect(classifyRedisError(err)).toEqual(prefix === undefined ? { code } : { code, redisPrefix: prefix })
  })

  it('classifies a transaction discarded for a command refused as it was queued by that refusal', () => {
    // ioredis keeps the replies of the refused commands in `previousErrors`.
    const discarded = Object.assign(
      new ReplyError('EXECABORT Transaction discarded because of previous errors.'),
      {
        previousErrors: [new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")],
      },
    )
    expect(classifyRedisError(discarded)).toEqual({ code: 'REDIS_OOM', redisPrefix: 'EXECABORT' })
  })

  it('reads the prefix of the reply only, never words further on in the message', () => {
    // A message that mentions a prefix elsewhere is classified by its own first word.
    expect(classifyRedisError(new ReplyError('ERR something about OOM and READONLY'))).toEqual({
      code: 'PROTOCOL_ERROR',
      redisPrefix: 'ERR',
    })
    // Only a reply is read for a prefix: a plain error whose text starts like one is not.
    expect(classifyRedisError(new Error('OOM command not allowed'))).toEqual({ code: 'PROTOCOL_ERROR' })
  })

  it('treats an error named ReplyError (another copy of ioredis) as a reply', () => {
    class ForeignReplyError extends Error {
      override get name(): string {
        return 'ReplyError'
      }
    }
    expect(classifyRedisError(new ForeignReplyError('READONLY You cannot write'))).toEqual({
      code: 'REDIS_READONLY',
      redisPrefix: 'READONLY',
    })
  })

  it('classifies connection failures by code, class or ioredis sentence, as REDIS_UNAVAILABLE', () => {
    const unavailable = [
      systemError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1', 'connect'),
      systemError('ECONNRESET', 'read ECONNRESET', 'read'),
      systemError('EPIPE', 'write EPIPE', 'write'),
      systemError('ENOTFOUND', 'getaddrinfo ENOTFOUND nohost', 'getaddrinfo'),
      // ioredis's own connect timeout: a code, no syscall.
      systemError('ETIMEDOUT', 'connect ETIMEDOUT'),
      // A system error with a code not listed is still a socket's failure.
      systemError('EWHATEVER', 'connect EWHATEVER', 'connect'),
      new AbortError('Command aborted due to connection close'),
      new Error('Connection is closed.'),
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('Command timed out'),
    ]
    for (const err of unavailable)
      expect(classifyRedisError(err), err.message).toEqual({ code: 'REDIS_UNAVAILABLE' })
  })

  it('classifies TLS failures by their code as REDIS_TLS', () => {
    for (const code of [
      'DEPTH_ZERO_SELF_SIGNED_CERT',
      'CERT_HAS_EXPIRED',
      'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      'ERR_TLS_CERT_ALTNAME_INVALID',
      'ERR_SSL_WRONG_VERSION_NUMBER',
    ]) {
      expect(classifyRedisError(systemError(code, 'tls failed')), code).toEqual({ code: 'REDIS_TLS' })
    }
  })

  it('leaves other failures as PROTOCOL_ERROR and a HedgeyardError as it is', () => {
    expect(classifyRedisError(new TypeError('x is not a function'))).toEqual({ code: 'PROTOCOL_ERROR' })
    expect(classifyRedisError('a string')).toEqual({ code: 'PROTOCOL_ERROR' })
    const own = new HedgeyardError('REDIS_OOM', 'x', { redisPrefix: 'OOM' })
    expect(classifyRedisError(own)).toEqual({ code: 'REDIS_OOM', redisPrefix: 'OOM' })
  })
})

describe('redisFailure', () => {
  it('keeps the original error as cause and the prefix, and names the call', () => {
    const reply = new ReplyError("OOM command not allowed when used memory > 'maxmemory'.")
    const err = redisFailure(reply, 'dispatch')
    expect(err).toBeInstanceOf(HedgeyardError)
    expect(err.code).toBe('REDIS_OOM')
    expect(err.redisPrefix).toBe('OOM')
    expect(err.cause).toBe(reply)
    expect(err.message).toBe("dispatch failed: OOM command not allowed when used memory > 'maxmemory'.")
  })

  it('shows the code of a TLS error whose message does not', () => {
    const err = redisFailure(systemError('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate'), 'inspect')
    expect(err.code).toBe('REDIS_TLS')
    expect(err.redisPrefix).toBeUndefined()
    expect(err.message).toBe('inspect failed: self-signed certificate (DEPTH_ZERO_SELF_SIGNED_CERT)')
  })

  it('returns a HedgeyardError unchanged', () => {
    const own = new HedgeyardError('TIMEOUT', 'late')
    expect(redisFailure(own, 'x')).toBe(own)
  })
})

describe('what ioredis really rejects with when there is no connection', () => {
  it('a refused connection, a command without a connection, on a closed client, or past its retries', async () => {
    const port = await freePort()
    const errors: unknown[] = []
    const conn = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    conn.on('error', (err) => errors.push(err))
    await conn.connect().catch((err: unknown) => errors.push(err))
    errors.push(await conn.get('k').catch((err: unknown) => err))
    conn.disconnect()
    errors.push(await conn.get('k').catch((err: unknown) => err))
    // With an offline queue, a command waits for a reconnect until it has used its retries.
    const queued = new Redis(port, '127.0.0.1', { maxRetriesPerRequest: 0, retryStrategy: () => 10 })
    queued.on('error', () => {})
    const retried = await queued.get('k').catch((err: unknown) => err)
    queued.disconnect()
    expect((retried as Error).name).toBe('MaxRetriesPerRequestError')
    errors.push(retried)
    expect(errors.length).toBeGreaterThanOrEqual(4)
    for (const err of errors)
      expect(classifyRedisError(err), String(err)).toEqual({ code: 'REDIS_UNAVAILABLE' })
  })

  it.each([
    ['cut off by a server that hangs up', (socket: Socket) => socket.once('data', () => socket.destroy())],
    ['past the commandTimeout of a template client', (socket: Socket) => socket.resume()],
  ])('a command %s is REDIS_UNAVAILABLE', async (_, serve) => {
    const server = createServer(serve)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const port = typeof address === 'object' && address ? address.port : 0
    const conn = new Redis(port, '127.0.0.1', {
      lazyConnect: true,
      protocol: 2,
      enableReadyCheck: false,
      disableClientInfo: true,
      commandTimeout: 200,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    })
    conn.on('error', () => {})
    try {
      await conn.connect()
      const err = await conn.get('k').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(Error)
      expect(classifyRedisError(err), String(err)).toEqual({ code: 'REDIS_UNAVAILABLE' })
    } finally {
      conn.disconnect()
      server.close()
    }
  })
})
