import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { fakeWorkers } from '@hedgeyard/testing/fake-pool'
import { cleanupPool, client, loadAndLengths, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { startLocalRedis } from '@hedgeyard/testing/redis-server'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { DISPATCHER_DEFAULTS } from '../producer/dispatcher.js'
import { createConnection } from '../redis/connection.js'
import { decodeEntry, entryFieldList, entryFields, type JobEntry } from './codec.js'
import { ERROR_CODES } from './errors.js'
import {
  affinityKey,
  CONSUMER_GROUP,
  outKey,
  poolKeys,
  queueKey,
  resultKey,
  sentKey,
  workerKey,
} from './keys.js'
import { LUA_SCRIPTS } from './lua/scripts.generated.js'
import { callScript } from './scripts/call.js'
import { appendChunks, type ChunkItem } from './scripts/chunk.js'
import { type Completion, completeJobs } from './scripts/complete.js'
import {
  DISPATCH,
  type DispatchItem,
  dispatchArgs,
  dispatchJobs,
  parseDispatchReply,
  readDispatchReceipt,
} from './scripts/dispatch.js'
import { heartbeat } from './scripts/heartbeat.js'
import { SCRIPT_SPECS } from './scripts/index.js'
import { rescueJobs } from './scripts/rescue.js'
import { DEFAULT_MAX_ATTEMPTS, RECEIPT_SLOTS } from './wire.js'

const c = client()
afterAll(() => c.disconnect())
const root = join(dirname(fileURLToPath(import.meta.url)), '../../../..')
const settings = { producerId: 'p', affinityTtlMs: 1000, resultTtlMs: undefined, seed: 1 }
const PLAIN_JOB: DispatchItem = {
  jobId: '',
  session: '',
  payload: '',
  timeoutMs: 60_000,
  attempt: 1,
  // The default: dispatch leaves `max` out of the entry exactly when it equals this.
  maxAttempts: DEFAULT_MAX_ATTEMPTS,
  exclude: '',
  race: '',
  copies: 1,
}

/** The entries of a stream, decoded (every one must be valid). */
async function entriesOf(key: string): Promise<JobEntry[]> {
  return (await c.xrange(key, '-', '+')).map(([id, fields]) => {
    const entry = decodeEntry(id, fields)
    if ('invalid' in entry) throw new Error(`${key} ${id}: ${entry.invalid}`)
    return entry
  })
}

const SETTINGS = { resultTtlMs: 60_000, deadLetterCap: 100 }

/** Completes entries of `worker` with outcome ok and the given envelopes; returns the statuses. */
async function complete(
  conn: ReturnType<typeof createConnection>,
  k: ReturnType<typeof poolKeys>,
  worker: string,
  done: [entryId: string, envelope: string][],
): Promise<string[]> {
  const jobs: Completion[] = done.map(([entryId, envelope]) => ({
    workerId: worker,
    entryId,
    outcome: 'ok',
    envelope,
  }))
  const { order, statuses } = await completeJobs(conn, k, SETTINGS, jobs)
  // Statuses come in the order of the groups: back to the order asked.
  return jobs.map((job) => statuses[order.indexOf(job)] as string)
}

describe('Lua scripts', () => {
  it.each(Object.entries(LUA_SCRIPTS))(
    '%s loads into Redis and has its header contract',
    async (_name, script) => {
      const sha = await c.script('LOAD', script.lua)
      expect(sha).toMatch(/^[0-9a-f]{40}$/)
      expect(script.lua).toMatch(/^--\[\[\n {2}[\w-]+: /)
      expect(script.lua).toMatch(/Returns/)
    },
  )

  it("each script's module passes the KEYS its header declares", () => {
    expect(SCRIPT_SPECS.map((s) => s.name).sort()).toEqual(Object.keys(LUA_SCRIPTS).sort())
    for (const spec of SCRIPT_SPECS) {
      const header = LUA_SCRIPTS[spec.name].lua.slice(0, LUA_SCRIPTS[spec.name].lua.indexOf(']]'))
      const fixed = [...header.matchAll(/^ {2}KEYS\[(\d+)\] ->/gm)].map((m) => Number(m[1]))
      expect({ script: spec.name, keys: fixed }).toEqual({
        script: spec.name,
        keys: Array.from({ length: spec.fixedKeys }, (_, i) => i + 1),
      })
      const perItem = header.match(/^ {2}KEYS\[(\d+)\.\.\]/m)
      expect({ script: spec.name, perItem: perItem ? Number(perItem[1]) : undefined }).toEqual({
        script: spec.name,
        perItem: spec.hasKeysPerItem ? spec.fixedKeys + 1 : undefined,
      })
    }
  })

  it('complete fences a stale completion (LOST) and drops a second result for the same job (DUP)', async () => {
    const pool = uniquePool('fence')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-fence')
    try {
      await conn.connect()
      // Queue two entries for the same job, as a hedge would, and read them as worker a.
      for (let i = 0; i < 2; i++) {
        await dispatchJobs(conn, k, settings, [
          { ...PLAIN_JOB, jobId: 'job-1', payload: '1', timeoutMs: 5000 },
        ])
      }
      const [e1, e2] = (await readAs(k, 'a', 2)) as [string, string]
      expect(await complete(conn, k, 'a', [[e1, '{"ok":true,"value":1}']])).toEqual(['OK'])
      expect(await complete(conn, k, 'a', [[e1, '{"ok":true,"value":1}']])).toEqual(['LOST'])
      expect(await complete(conn, k, 'a', [[e2, '{"ok":true,"value":2}']])).toEqual(['DUP'])
      expect(await c.get(resultKey(k, 'job-1'))).toBe('{"ok":true,"value":1}')
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'a', load: 0, xlen: 0 }])
      expect(await c.hget(workerKey(k, 'a'), 'processed')).toBe('2')

      // The same in one call, behind a stale one: statuses come per completion.
      for (let i = 0; i < 2; i++) {
        await dispatchJobs(conn, k, settings, [{ ...PLAIN_JOB, jobId: 'job-2', payload: '1' }])
      }
      const [e3, e4] = (await readAs(k, 'a', 2)) as [string, string]
      expect(
        await complete(conn, k, 'a', [
          [e1, '{"ok":true,"value":5}'],
          [e3, '{"ok":true,"value":3}'],
          [e4, '{"ok":true,"value":4}'],
        ]),
      ).toEqual(['LOST', 'OK', 'DUP'])
      expect(await c.get(resultKey(k, 'job-2'))).toBe('{"ok":true,"value":3}')
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'a', load: 0, xlen: 0 }])
      expect(await c.hget(workerKey(k, 'a'), 'processed')).toBe('4')
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('complete answers an entry id only as Redis writes it: another spelling or a bare time is LOST, and load stays XLEN', async () => {
    const pool = uniquePool('spelling')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-spelling')
    try {
      await conn.connect()
      await dispatchJobs(conn, k, settings, [
        { ...PLAIN_JOB, jobId: 'job-1', payload: '1' },
        { ...PLAIN_JOB, jobId: 'job-2', payload: '2' },
      ])
      const [e1, e2] = (await readAs(k, 'a', 2)) as [string, string]
      const ms = e1.slice(0, e1.indexOf('-'))
      // The same entry twice, spelled another way; a bare time (a range of entries); an id past 2^64.
      expect(
        await complete(conn, k, 'a', [
          [e1, '{"ok":true,"value":1}'],
          [`0${e1}`, '{"ok":true,"value":1}'],
          [ms, '{"ok":true,"value":2}'],
          ['99999999999999999999-0', '{"ok":true,"value":2}'],
        ]),
      ).toEqual(['OK', 'LOST', 'LOST', 'LOST'])
      expect(await c.exists(resultKey(k, 'job-2'))).toBe(0)
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'a', load: 1, xlen: 1 }])
      expect(await complete(conn, k, 'a', [[e2, '{"ok":true,"value":2}']])).toEqual(['OK'])
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'a', load: 0, xlen: 0 }])
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('dispatch answers in job order when a run fills the pool and the jobs after it find no room', async () => {
    const pool = uniquePool('recorder')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0, b: 0 }, { capacity: 2 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-recorder')
    try {
      await conn.connect()
      // Room for 4 jobs: a run of 3, one job with a session, then a run of 2 that finds no room.
      const jobs: DispatchItem[] = [
        { ...PLAIN_JOB, jobId: 'r1', payload: '1' },
        { ...PLAIN_JOB, jobId: 'r2', payload: '2' },
        { ...PLAIN_JOB, jobId: 'r3', payload: '3' },
        { ...PLAIN_JOB, jobId: 's1', payload: '4', session: 'sess' },
        { ...PLAIN_JOB, jobId: 'r4', payload: '5', timeoutMs: 7000 },
        { ...PLAIN_JOB, jobId: 'r5', payload: '6', timeoutMs: 7000 },
      ]
      const outcomes = await dispatchJobs(conn, k, settings, jobs)
      const targets = outcomes.map((o) => (o.status === 'queued' ? o.workerId : o.status))
      expect(targets.slice(4)).toEqual(['SATURATED', 'SATURATED'])
      expect([...targets.slice(0, 4)].sort()).toEqual(['a', 'a', 'b', 'b'])
      // Each job is in the stream the reply named, in submit order.
      for (const w of ['a', 'b']) {
        expect((await entriesOf(queueKey(k, w))).map((e) => e.jobId)).toEqual(
          jobs
            .slice(0, 4)
            .filter((_, i) => targets[i] === w)
            .map((j) => j.jobId),
        )
      }
      expect(await c.get(affinityKey(k, 'sess'))).toBe(targets[3])
      expect(await c.zcard(k.ready)).toBe(0)
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it("dispatch writes a copy's trace context in its entry, and refuses one that is not a traceparent before any write", async () => {
    const pool = uniquePool('trace')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-trace')
    const traceparent = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`
    try {
      await conn.connect()
      const good = dispatchArgs(k, settings, [{ ...PLAIN_JOB, jobId: 'j1', payload: '1', traceparent }])
      expect(await callScript(conn, DISPATCH, good.keys, good.args)).toEqual(['a', 0])
      const [entry] = await entriesOf(queueKey(k, 'a'))
      expect(entry?.traceparent).toBe(traceparent)
      const bad = dispatchArgs(k, settings, [
        { ...PLAIN_JOB, jobId: 'j2', payload: '2', traceparent: '00-xyz' },
      ])
      await expect(callScript(conn, DISPATCH, bad.keys, bad.args)).rejects.toThrow(
        /trace is not a W3C traceparent/,
      )
      expect(await c.xlen(queueKey(k, 'a'))).toBe(1)
      // Written by someone else, a malformed trace is dropped by the decoder; the job still runs.
      const decoded = decodeEntry(
        '1-1',
        entryFieldList({ id: 'j3', payload: '3', producer: 'p', trace: 'nonsense' }),
      )
      expect(decoded).toMatchObject({ jobId: 'j3', traceparent: undefined })
      expect('invalid' in decoded).toBe(false)
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('dispatch refuses a run whose ids or payloads do not match its count, before any write', async () => {
    const pool = uniquePool('runs')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-runs')
    try {
      await conn.connect()
      const jobs = [
        { ...PLAIN_JOB, jobId: 'j1', payload: '1' },
        { ...PLAIN_JOB, jobId: 'j2', payload: '2' },
      ]
      const call = dispatchArgs(k, settings, jobs)
      const at = call.args.indexOf('p', 6)
      const withArgs = (ids: string, payloads: string) => {
        const args = [...call.args]
        args[at + 5] = ids
        args[at + 6] = payloads
        return callScript(conn, DISPATCH, call.keys, args)
      }
      await expect(withArgs('j1', '1\n2')).rejects.toThrow(/fewer jobs than its count/)
      await expect(withArgs('j1,j2', '1')).rejects.toThrow(/fewer jobs than its count/)
      await expect(withArgs('j1,j2', '1\n2\n3')).rejects.toThrow(/more jobs than its count/)
      await expect(withArgs('j1,j2,j3', '1\n2')).rejects.toThrow(/not a valid id/)
      await expect(callScript(conn, DISPATCH, call.keys, call.args.slice(0, at + 6))).rejects.toThrow(
        /cut short/,
      )
      expect(await c.xlen(queueKey(k, 'a'))).toBe(0)
      // A payload with a line break (not one JSON.stringify writes) goes in a record of its own.
      const odd = dispatchArgs(k, settings, [...jobs, { ...PLAIN_JOB, jobId: 'j3', payload: '"a\nb"' }])
      expect(odd.records).toEqual([2, 0])
      expect(await callScript(conn, DISPATCH, odd.keys, odd.args)).toEqual(['a,a', 'a', 0])
      expect((await entriesOf(queueKey(k, 'a'))).map((e) => e.payload)).toEqual(['1', '2', '"a\nb"'])
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it("dispatch leaves a receipt of each call, which tells a lost reply's call that ran from one that did not", async () => {
    const pool = uniquePool('receipts')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-receipts')
    try {
      await conn.connect()
      const jobs = [
        { ...PLAIN_JOB, jobId: 'j1', payload: '1' },
        { ...PLAIN_JOB, jobId: 'j2', payload: '2', session: 's1' },
      ]
      const call = dispatchArgs(k, { ...settings, callNumber: RECEIPT_SLOTS + 3, receiptTtlMs: 90_000 }, jobs)
      const reply = await callScript(conn, DISPATCH, call.keys, call.args)
      expect(reply).toEqual(['a', 'a', 0])
      // The call that ran reads back as its reply; the call before it, and the one 64 calls before
      // (same slot), as not run.
      expect(await readDispatchReceipt(conn, k, 'p', RECEIPT_SLOTS + 3)).toEqual(reply)
      expect(
        parseDispatchReply(await readDispatchReceipt(conn, k, 'p', RECEIPT_SLOTS + 3), call.records, 2),
      ).toEqual([
        { status: 'queued', workerId: 'a', isAffinityHit: false },
        { status: 'queued', workerId: 'a', isAffinityHit: false },
      ])
      expect(await readDispatchReceipt(conn, k, 'p', RECEIPT_SLOTS + 2)).toBeUndefined()
      expect(await readDispatchReceipt(conn, k, 'p', 3)).toBeUndefined()
      expect(await readDispatchReceipt(conn, k, 'other', RECEIPT_SLOTS + 3)).toBeUndefined()
      const ttl = await c.pttl(sentKey(k, 'p'))
      expect(ttl).toBeGreaterThan(60_000)
      expect(ttl).toBeLessThanOrEqual(90_000)

      // Bad receipt arguments fail the call before any write: no entry, no receipt.
      const before = await c.xlen(queueKey(k, 'a'))
      const withArg = (at: number, value: string) => {
        const args = [...call.args]
        args[at] = value
        return callScript(conn, DISPATCH, call.keys, args)
      }
      await expect(withArg(5, 'x')).rejects.toThrow(/call number is not a whole number/)
      await expect(withArg(6, '0')).rejects.toThrow(/receipt TTL is not a positive whole number/)
      const elsewhere = [...call.keys]
      elsewhere[5] = sentKey(k, 'other')
      await expect(callScript(conn, DISPATCH, elsewhere, call.args)).rejects.toThrow(
        /receipt key does not match the producer id/,
      )
      await c.set(sentKey(k, 'p2'), 'x')
      const wrongType = dispatchArgs(k, { ...settings, producerId: 'p2' }, jobs)
      await expect(callScript(conn, DISPATCH, wrongType.keys, wrongType.args)).rejects.toMatchObject({
        code: 'REDIS_WRONGTYPE',
      })
      expect(await c.xlen(queueKey(k, 'a'))).toBe(before)
      expect(await readDispatchReceipt(conn, k, 'p', 0)).toBeUndefined()
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('a reply is read run by run: the jobs a run placed on one worker share its outcome', () => {
    const outcomes = parseDispatchReply(['w1,w2,w1,SATURATED,RATE_LIMITED 40', 'w3', 1], [5, 0], 6)
    expect(outcomes).toEqual([
      { status: 'queued', workerId: 'w1', isAffinityHit: false },
      { status: 'queued', workerId: 'w2', isAffinityHit: false },
      { status: 'queued', workerId: 'w1', isAffinityHit: false },
      { status: 'SATURATED' },
      { status: 'RATE_LIMITED', retryAfterMs: 40, isTenant: false },
      { status: 'queued', workerId: 'w3', isAffinityHit: true },
    ])
    expect(outcomes[2]).toBe(outcomes[0])
    for (const bad of [['w1'], ['w1,w2,w3'], ['w1,,w2'], ['w1,RATE_LIMITED x'], [3]]) {
      expect(() => parseDispatchReply(bad, [2], 2)).toThrow(/dispatch replied/)
    }
  })

  it('dispatch keeps the order of a batch that mixes runs of plain jobs with other jobs', async () => {
    const pool = uniquePool('records')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-records')
    try {
      await conn.connect()
      const jobs: DispatchItem[] = [
        { ...PLAIN_JOB, jobId: 'j1', payload: '1', timeoutMs: 5000 },
        { ...PLAIN_JOB, jobId: 'j2', payload: '2', timeoutMs: 5000 },
        { ...PLAIN_JOB, jobId: 'j3', payload: '3', session: 's1' },
        { ...PLAIN_JOB, jobId: 'j4', payload: '4', timeoutMs: 7000 },
        { ...PLAIN_JOB, jobId: 'j5', payload: '5', timeoutMs: 7000, maxAttempts: 5 },
      ]
      const call = dispatchArgs(k, settings, jobs)
      // The pool's 5 keys, the producer's receipts and the session's; a header of 8 values, then
      // 'p' runs of 7 (their ids and their payloads joined) and one 'f' record of 14.
      expect(call.keys).toEqual([
        k.load,
        k.ready,
        k.alive,
        k.limits,
        k.quota,
        sentKey(k, settings.producerId),
        affinityKey(k, 's1'),
      ])
      expect(call.args.slice(8, 15)).toEqual(['p', 5000, DEFAULT_MAX_ATTEMPTS, 1, 2, 'j1,j2', '1\n2'])
      expect(call.args.length).toBe(8 + 7 + 14 + 7 + 7)
      expect(call.records).toEqual([2, 0, 1, 1])
      const reply = await callScript(conn, DISPATCH, call.keys, call.args)
      // A run answers with one string, its jobs' workers joined; a record with a worker and a hit.
      expect(reply).toEqual(['a,a', 'a', 0, 'a', 'a'])
      const raw = await c.xrange(queueKey(k, 'a'), '-', '+')
      const entries = raw.map(([, fields]) => entryFields(fields))
      // Fields equal to their defaults are left out: attempt 1, max 3 (the Dispatcher's default), no ttl.
      expect(DISPATCHER_DEFAULTS.maxAttempts).toBe(DEFAULT_MAX_ATTEMPTS)
      expect(
        entries.map((f) => [f.id, f.payload, f.session, Number(f.deadline) - Number(f.enqueued), f.max]),
      ).toEqual([
        ['j1', '1', undefined, 5000, undefined],
        ['j2', '2', undefined, 5000, undefined],
        ['j3', '3', 's1', 60_000, undefined],
        ['j4', '4', undefined, 7000, undefined],
        ['j5', '5', undefined, 7000, '5'],
      ])
      // A plain job's entry is its four words and its payload, nothing more.
      expect(raw[0]?.[1]).toEqual(['job', expect.stringMatching(/^j1 p \d{13} \d{13}$/), 'payload', '1'])
      expect(Object.keys(entries[0] ?? {}).sort()).toEqual([
        'deadline',
        'enqueued',
        'id',
        'payload',
        'producer',
      ])
      expect(entries.every((f) => f.attempt === undefined && f.ttl === undefined)).toBe(true)
      // Times are whole milliseconds of Redis time, written as digits (tools and workers parse them).
      const [seconds] = await c.time()
      for (const f of entries) {
        expect(f.enqueued).toMatch(/^\d{13}$/)
        expect(f.deadline).toMatch(/^\d{13}$/)
        expect(Math.abs(Number(f.enqueued) - Number(seconds) * 1000)).toBeLessThan(5000)
      }
      const decoded = await entriesOf(queueKey(k, 'a'))
      expect(decoded.map((e) => [e.attempt, e.copy, e.resultTtlMs, e.maxAttempts])).toEqual([
        [1, 1, undefined, 3],
        [1, 1, undefined, 3],
        [1, 1, undefined, 3],
        [1, 1, undefined, 3],
        [1, 1, undefined, 5],
      ])

      // A TTL the producer asked for travels in the entry.
      await dispatchJobs(conn, k, { ...settings, resultTtlMs: 9000 }, [{ ...PLAIN_JOB, jobId: 'j6' }])
      expect((await entriesOf(queueKey(k, 'a'))).at(-1)?.resultTtlMs).toBe(9000)
      expect(await c.get(affinityKey(k, 's1'))).toBe('a')
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})

/** Reads `count` new entries of `worker`'s stream as that worker (all must be there); returns their ids. */
async function readAs(k: ReturnType<typeof poolKeys>, worker: string, count: number): Promise<string[]> {
  const read = (await c.xreadgroup(
    'GROUP',
    CONSUMER_GROUP,
    worker,
    'COUNT',
    count,
    'STREAMS',
    queueKey(k, worker),
    '>',
  )) as [string, [string, string[]][]][]
  const ids = (read[0]?.[1] ?? []).map(([id]) => id)
  expect(ids).toHaveLength(count)
  return ids
}

const RESCUE = { budget: 500, deadLetterCap: 100, resultTtlMs: 60_000 }

describe('rescue script and the candidates', () => {
  it('a worker rescued as dead gets no job of a later batch, even after its late completion and heartbeat', async () => {
    const pool = uniquePool('rescued')
    const fake = await fakeWorkers(redisUrl(), pool, { dead: 0, l1: 0, l2: 0, l3: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-rescued')
    try {
      await conn.connect()
      const job = { ...PLAIN_JOB, jobId: 'job-0', payload: '1', exclude: 'l1,l2,l3' }
      expect(await dispatchJobs(conn, k, settings, [job])).toEqual([
        { status: 'queued', workerId: 'dead', isAffinityHit: false },
      ])
      const [entryId] = await readAs(k, 'dead', 1)
      await c.zadd(k.alive, 1, 'dead')
      await rescueJobs(conn, k, RESCUE, { mode: 'dead' })
      // The late completion is refused and the heartbeat finds the worker gone: neither makes it
      // a candidate again.
      expect(await complete(conn, k, 'dead', [[entryId as string, '1']])).toEqual(['LOST'])
      expect((await heartbeat(conn, k, 60_000, ['dead'])).statuses).toEqual(['GONE'])
      expect(await c.zscore(k.ready, 'dead')).toBeNull()
      // Every lease left runs: dispatch takes every candidate as alive without reading its lease.
      const batch = Array.from({ length: 12 }, (_, i) => ({ ...PLAIN_JOB, jobId: `b-${i}`, payload: '1' }))
      const outcomes = await dispatchJobs(conn, k, settings, batch)
      // The 12 jobs and the rescued one end level over the three live workers.
      expect(new Set(outcomes.map((o) => (o.status === 'queued' ? o.workerId : o.status)))).toEqual(
        new Set(['l1', 'l2', 'l3']),
      )
      const lengths = await loadAndLengths(c, pool)
      expect(lengths.map((w) => w.workerId).sort()).toEqual(['l1', 'l2', 'l3'])
      expect(lengths.map((w) => w.xlen).sort()).toEqual([4, 4, 5])
      expect(await c.exists(queueKey(k, 'dead'))).toBe(0)
      for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('a dead worker that a late completion puts back among the candidates gets no job while its lease is expired', async () => {
    const pool = uniquePool('halfrescued')
    const fake = await fakeWorkers(redisUrl(), pool, { dead: 0, l1: 0, l2: 0 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-halfrescued')
    try {
      await conn.connect()
      const jobs = [0, 1, 2].map((i) => ({ ...PLAIN_JOB, jobId: `job-${i}`, payload: '1', exclude: 'l1,l2' }))
      for (const job of jobs) await dispatchJobs(conn, k, settings, [job])
      const entryIds = await readAs(k, 'dead', 3)
      await c.zadd(k.alive, 1, 'dead')
      // A rescue with a budget of one moves one job: the worker keeps two entries, its hash and its
      // expired lease, and leaves `ready`.
      expect(await rescueJobs(conn, k, { ...RESCUE, budget: 1 }, { mode: 'dead' })).toEqual({
        removed: 0,
        moved: 1,
        lettered: 0,
        dropped: 0,
        handled: 0,
      })
      // Its late completion of an entry not moved yet is accepted and, its hash saying active and
      // below capacity, puts it back in `ready`.
      expect(await complete(conn, k, 'dead', [[entryIds[2] as string, '1']])).toEqual(['OK'])
      expect(await c.zscore(k.ready, 'dead')).not.toBeNull()
      // Its lease is the earliest and has run out, so leases are read worker by worker: a batch
      // never reaches it, and drops it from `ready`.
      const batch = Array.from({ length: 6 }, (_, i) => ({ ...PLAIN_JOB, jobId: `b-${i}`, payload: '1' }))
      const outcomes = await dispatchJobs(conn, k, settings, batch)
      expect(new Set(outcomes.map((o) => (o.status === 'queued' ? o.workerId : o.status)))).toEqual(
        new Set(['l1', 'l2']),
      )
      expect(await c.xlen(queueKey(k, 'dead'))).toBe(1)
      expect(await c.zscore(k.ready, 'dead')).toBeNull()
      for (const { load, xlen } of await loadAndLengths(c, pool)) expect(load).toBe(xlen)
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})

describe('rescue script, return mode', () => {
  it("moves a draining worker's read-ahead entries while others have room, attempt unchanged, and keeps the rest", async () => {
    const pool = uniquePool('return')
    const fake = await fakeWorkers(redisUrl(), pool, { w: 0, x: 0 }, { capacity: 1 })
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-return')
    try {
      await conn.connect()
      await c.zadd(k.ready, 9, 'w')
      await c.hset(workerKey(k, 'w'), 'capacity', 10)
      for (let i = 0; i < 3; i++) {
        const job = { ...PLAIN_JOB, jobId: `job-${i}`, payload: '1', exclude: 'x' }
        await dispatchJobs(conn, k, { ...settings, seed: i }, [job])
      }
      await c.zrem(k.ready, 'w')
      const ids = (await readAs(k, 'w', 3)) as [string, string, string]
      // x has room for one job: the first id moves, a vanished id is skipped, the others stay.
      const reply = await rescueJobs(
        conn,
        k,
        { ...RESCUE, budget: 100 },
        {
          mode: 'return',
          workerId: 'w',
          entryIds: [ids[0], '1-1', ids[1], ids[2]],
        },
      )
      expect(reply).toEqual({ removed: 0, moved: 1, lettered: 0, dropped: 0, handled: 2 })
      expect((await entriesOf(queueKey(k, 'x'))).map((e) => [e.jobId, e.attempt])).toEqual([['job-0', 1]])
      expect((await c.xpending(queueKey(k, 'w'), CONSUMER_GROUP))[0]).toBe(2)
      const lengths = await loadAndLengths(c, pool)
      expect(lengths.sort((p, q) => p.workerId.localeCompare(q.workerId))).toEqual([
        { workerId: 'w', load: 2, xlen: 2 },
        { workerId: 'x', load: 1, xlen: 1 },
      ])
    } finally {
      conn.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})

describe('docs/errors.md', () => {
  it('documents exactly the error codes the library has', () => {
    const doc = readFileSync(join(root, 'docs/errors.md'), 'utf8')
    const headings = [...doc.matchAll(/^## ([A-Z_]+)\s*$/gm)].map((m) => m[1])
    expect([...headings].sort()).toEqual([...ERROR_CODES].sort())
  })
})

describe('rescue script', () => {
  it('moves the jobs of a dead worker exactly once when two workers run it at the same time', async () => {
    const pool = uniquePool('rescue2')
    const fake = await fakeWorkers(redisUrl(), pool, { dead: 0, live: 0 })
    const k = poolKeys('hy', pool)
    const a = createConnection(redisUrl(), 'command', 'hy:test-rescue-a')
    const b = createConnection(redisUrl(), 'command', 'hy:test-rescue-b')
    try {
      await Promise.all([a.connect(), b.connect()])
      // 20 real jobs on the worker that is about to die, 5 of them read (started) by it.
      for (let i = 0; i < 20; i++) {
        // Excluding the live worker sends every job to the one about to die.
        const job = { ...PLAIN_JOB, jobId: `job-${i}`, payload: '1', exclude: 'live' }
        await dispatchJobs(a, k, { ...settings, seed: i }, [job])
      }
      expect(await c.xlen(queueKey(k, 'dead'))).toBe(20)
      await readAs(k, 'dead', 5)
      await c.zadd(k.alive, 1, 'dead')
      const [ra, rb] = await Promise.all([
        rescueJobs(a, k, RESCUE, { mode: 'dead' }),
        rescueJobs(b, k, RESCUE, { mode: 'dead' }),
      ])
      // One run moved all 20 and removed the worker; the other found nothing to do.
      expect([ra.moved, rb.moved].sort()).toEqual([0, 20])
      expect([ra.removed, rb.removed].sort()).toEqual([0, 1])
      const moved = await entriesOf(queueKey(k, 'live'))
      expect(new Set(moved.map((e) => e.jobId)).size).toBe(20)
      expect(moved.filter((e) => e.attempt === 2)).toHaveLength(5)
      // The jobs carried no ttl (their producer set none): moved, they still carry none, so the
      // worker that runs them applies its own resultTtlMs.
      expect(moved.filter((e) => e.resultTtlMs !== undefined)).toHaveLength(0)
      expect(await loadAndLengths(c, pool)).toEqual([{ workerId: 'live', load: 20, xlen: 20 }])
      expect(await c.exists(queueKey(k, 'dead'), workerKey(k, 'dead'))).toBe(0)
    } finally {
      a.disconnect()
      b.disconnect()
      fake.disconnect()
      await cleanupPool(c, pool)
    }
  })
})

describe('chunk script', () => {
  it('takes a job chunk 1 from one copy only, then each next chunk in order, and nothing once the job ended or its entry is gone', async () => {
    const pool = uniquePool('chunk')
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-chunk')
    const qa = queueKey(k, 'a')
    const qb = queueKey(k, 'b')
    const entry = (q: string, id: string, extra: Record<string, string> = {}) =>
      c.xadd(
        q,
        '*',
        ...entryFieldList({ id, producer: 'p', race: 's', payload: '{}', ...extra }),
      ) as Promise<string>
    const item = (workerId: string, entryId: string, jobId: string, seq: number, n = 1): ChunkItem => ({
      workerId,
      entryId,
      jobId,
      seq,
      data: Array.from({ length: n }, (_, i) => JSON.stringify(seq + i)),
    })
    const append = (...items: ChunkItem[]) => appendChunks(conn, k, 60_000, items)
    try {
      await conn.connect()
      // Two copies of job j, on workers a and b; a plain job; a streamed job with its own ttl.
      const ja = await entry(qa, 'j')
      const jb = await entry(qb, 'j')
      const plain = (await c.xadd(
        qa,
        '*',
        ...entryFieldList({ id: 'plain', producer: 'p', payload: '{}' }),
      )) as string
      const withTtl = await entry(qa, 't', { ttl: '5000' })
      expect(await append(item('a', ja, 'j', 1), item('b', jb, 'j', 1))).toEqual(['OK', 'LATE'])
      expect(await append(item('b', jb, 'j', 1))).toEqual(['LATE'])
      // The owner's chunk 1 sent again, or a chunk past the next, is not the next one.
      expect(await append(item('a', ja, 'j', 1), item('a', ja, 'j', 3))).toEqual(['LOST', 'LOST'])
      expect(await append(item('a', ja, 'j', 2, 3), item('a', ja, 'j', 5), item('a', ja, 'j', 7))).toEqual([
        'OK',
        'OK',
        'LOST',
      ])
      const out = await c.xrange(outKey(k, 'j'), '-', '+')
      expect(out.map(([id]) => id)).toEqual(['0-1', '0-4', '0-5'])
      // Chunk 1's entry names the copy that owns the stream, its producer and how long it is kept.
      expect(out[0]?.[1]).toEqual(['d', '1', 'w', 'a', 'e', ja, 'p', 'p', 'k', '60000'])
      expect(out[1]?.[1]).toEqual(['b', '[2,3,4]', 'n', '3'])
      // A job that is not streamed, an id the stream never had, and an entry with its own TTL.
      expect(
        await append(item('a', plain, 'plain', 1), item('a', '1-1', 'j', 6), item('a', withTtl, 't', 1)),
      ).toEqual(['LOST', 'LOST', 'OK'])
      expect(await c.pttl(outKey(k, 't'))).toBeGreaterThan(4_000)
      expect(await c.pttl(outKey(k, 't'))).toBeLessThanOrEqual(5_000)
      expect(await c.pttl(outKey(k, 'j'))).toBeGreaterThan(50_000)
      // The job's end: its result, or an end entry whose result has gone.
      await c.set(resultKey(k, 't'), '{"ok":true}')
      await c.xadd(outKey(k, 'j'), '0-*', 'end', '{"ok":true}')
      expect(await append(item('a', withTtl, 't', 2), item('a', ja, 'j', 7))).toEqual(['ENDED', 'ENDED'])
      // An output key of another type, and an entry taken away (rescued, cancelled).
      const other = await entry(qa, 'x')
      await c.set(outKey(k, 'x'), 'not a stream')
      await c.xdel(qa, withTtl)
      expect(await append(item('a', other, 'x', 1), item('a', withTtl, 't', 2))).toEqual(['LOST', 'LOST'])
    } finally {
      conn.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('takes a later chunk of the copy that owns its stream without reading its request again, while its entry is pending for its worker', async () => {
    // A Redis of its own: the test counts the commands the script runs.
    const server = await startLocalRedis()
    const r = new Redis(server.url)
    const conn = createConnection(server.url, 'command', 'hy:test-chunk-pending')
    const k = poolKeys('hy', 'chunk-pending')
    const q = queueKey(k, 'a')
    const item = (entryId: string, jobId: string, seq: number): ChunkItem => ({
      workerId: 'a',
      entryId,
      jobId,
      seq,
      data: [String(seq)],
    })
    const append = (...items: ChunkItem[]) => appendChunks(conn, k, 60_000, items)
    const calls = async (command: string) =>
      Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await r.info('commandstats'))?.[1] ?? 0)
    try {
      await conn.connect()
      // Three streamed jobs of a long request, read by worker a (pending for it, as running jobs are);
      // one with a deadline.
      const request = JSON.stringify({ contents: 'x'.repeat(20_000) })
      await r.xgroup('CREATE', q, 'hy', '0', 'MKSTREAM')
      const add = (id: string, deadline?: string) =>
        r.xadd(
          q,
          '*',
          ...entryFieldList({
            id,
            producer: 'p',
            race: 's',
            payload: request,
            ...(deadline === undefined ? {} : { deadline }),
          }),
        ) as Promise<string>
      const [e1, e2, e3] = [await add('j1'), await add('j2'), await add('j3', String(Date.now() + 600_000))]
      await r.xreadgroup('GROUP', 'hy', 'a', 'COUNT', 10, 'STREAMS', q, '>')
      expect(await append(item(e1, 'j1', 1), item(e2, 'j2', 1), item(e3, 'j3', 1))).toEqual([
        'OK',
        'OK',
        'OK',
      ])
      // A job with a deadline has its stream's TTL set by chunk 1 for good: no k.
      expect((await r.xrange(outKey(k, 'j3'), '-', '+'))[0]?.[1]).toEqual([
        'd',
        '1',
        'w',
        'a',
        'e',
        e3,
        'p',
        'p',
      ])
      await r.pexpire(outKey(k, 'j1'), 1_000)
      await r.config('RESETSTAT')
      expect(await append(item(e1, 'j1', 2), item(e2, 'j2', 2), item(e3, 'j3', 2))).toEqual([
        'OK',
        'OK',
        'OK',
      ])
      // One XRANGE per stream (its first entry), none of a worker's entry: the request is not read.
      expect(await calls('xrange')).toBe(3)
      expect(await calls('xpending')).toBe(3)
      // Chunk 2 of a job with no deadline renewed its stream's TTL from k.
      expect(await r.pttl(outKey(k, 'j1'))).toBeGreaterThan(50_000)
      // Completed (acknowledged and deleted, as complete does): its next chunk is lost.
      await r.xack(q, 'hy', e1)
      await r.xdel(q, e1)
      expect(await append(item(e1, 'j1', 3), item(e2, 'j2', 3))).toEqual(['LOST', 'OK'])
      // A stream whose first entry names no producer (written without one) is checked against the
      // entry as before; a stream whose first entry names another copy takes nothing from this one.
      const e4 = await add('j4')
      const e5 = await add('j5')
      await r.xreadgroup('GROUP', 'hy', 'a', 'COUNT', 10, 'STREAMS', q, '>')
      await r.xadd(outKey(k, 'j4'), '0-1', 'd', '1', 'w', 'a', 'e', e4)
      await r.xadd(outKey(k, 'j5'), '0-1', 'd', '1', 'w', 'b', 'e', e5, 'p', 'p')
      await r.config('RESETSTAT')
      expect(await append(item(e4, 'j4', 2), item(e5, 'j5', 2))).toEqual(['OK', 'LOST'])
      expect(await calls('xrange')).toBe(4)
      // A first entry written by someone else: a producer that is not an id (the entry is read, and
      // the stream of a job with no deadline still renewed), and an entry id that names a range
      // ('<ms>' alone, which XPENDING would match with a pending entry of another job): lost.
      const e6 = await add('j6')
      const e7 = await add('j7')
      await r.xreadgroup('GROUP', 'hy', 'a', 'COUNT', 10, 'STREAMS', q, '>')
      await r.xadd(outKey(k, 'j6'), '0-1', 'd', '1', 'w', 'a', 'e', e6, 'p', '')
      await r.pexpire(outKey(k, 'j6'), 1_000)
      const ms = e7.split('-')[0] as string
      await r.xadd(outKey(k, 'j7'), '0-1', 'd', '1', 'w', 'a', 'e', ms, 'p', 'p')
      await r.config('RESETSTAT')
      expect(await append(item(e6, 'j6', 2), item(ms, 'j7', 2))).toEqual(['OK', 'LOST'])
      expect(await calls('xrange')).toBe(3)
      expect(await r.pttl(outKey(k, 'j6'))).toBeGreaterThan(50_000)
    } finally {
      conn.disconnect()
      r.disconnect()
      await server.stop()
    }
  })

  it("a stream begun again by another copy is that copy's, and a write the stream no longer fits loses that item only", async () => {
    const pool = uniquePool('chunk-owner')
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-chunk-owner')
    const add = (q: string, id: string) =>
      c.xadd(q, '*', ...entryFieldList({ id, producer: 'p', race: 's', payload: '{}' })) as Promise<string>
    const item = (workerId: string, entryId: string, jobId: string, seq: number, n = 1): ChunkItem => ({
      workerId,
      entryId,
      jobId,
      seq,
      data: Array.from({ length: n }, (_, i) => String(seq + i)),
    })
    const append = (...items: ChunkItem[]) => appendChunks(conn, k, 60_000, items)
    try {
      await conn.connect()
      const a = await add(queueKey(k, 'a'), 'j')
      const b = await add(queueKey(k, 'b'), 'j')
      // A owns the stream; in one call B's chunk 2 is refused and A's taken.
      expect(await append(item('a', a, 'j', 1))).toEqual(['OK'])
      expect(await append(item('b', b, 'j', 2), item('a', a, 'j', 2))).toEqual(['LOST', 'OK'])
      // The stream expires mid-job and B begins it again: it is B's from then on.
      await c.del(outKey(k, 'j'))
      expect(await append(item('b', b, 'j', 1))).toEqual(['OK'])
      expect(await append(item('a', a, 'j', 3), item('b', b, 'j', 2))).toEqual(['LOST', 'OK'])
      expect((await c.xrange(outKey(k, 'j'), '-', '+')).map(([id, f]) => [id, f[1]])).toEqual([
        ['0-1', '1'],
        ['0-2', '2'],
      ])
      // A worker stream of another type holds no entry of this worker.
      await c.set(queueKey(k, 'c'), 'not a stream')
      expect(await append(item('c', '1-1', 'j', 3))).toEqual(['LOST'])
      // A top entry deleted by hand: the stream's last entry is the chunk before, so the checks
      // pass, but Redis takes no id below the deleted one; that item is lost, not the call.
      const x = await add(queueKey(k, 'a'), 'x')
      expect(await append(item('b', b, 'j', 3, 2))).toEqual(['OK'])
      await c.xadd(outKey(k, 'j'), '0-9', 'd', '9')
      await c.xdel(outKey(k, 'j'), '0-9')
      expect(await append(item('a', x, 'x', 1), item('b', b, 'j', 5), item('b', b, 'j', 6))).toEqual([
        'OK',
        'LOST',
        'LOST',
      ])
      expect(await c.xlen(outKey(k, 'x'))).toBe(1)
    } finally {
      conn.disconnect()
      await cleanupPool(c, pool)
    }
  })

  it('fails one item for an entry it cannot read, and takes the others of the call', async () => {
    const pool = uniquePool('chunk-bad')
    const k = poolKeys('hy', pool)
    const conn = createConnection(redisUrl(), 'command', 'hy:test-chunk-bad')
    const q = queueKey(k, 'a')
    try {
      await conn.connect()
      const bad = [
        ['job', 'j1'],
        ['job', 'j2 p - 0 race=s extra', 'payload', '{}'],
        ['payload', '{}'],
        ['job', 'j4 p - 0 race=s ttl=soon', 'payload', '{}'],
        ['job', 'j5 p - 0 race=h', 'payload', '{}'],
      ]
      const ids: string[] = []
      for (const fields of bad) ids.push((await c.xadd(q, '*', ...fields)) as string)
      const good = (await c.xadd(
        q,
        '*',
        'job',
        'ok p - 0 race=s',
        'payload',
        '{}',
        'session',
        's 1',
      )) as string
      const jobs = ['j1', 'j2', 'j3', 'j4', 'j5']
      const items: ChunkItem[] = jobs.map((jobId, i) => ({
        workerId: 'a',
        entryId: ids[i] as string,
        jobId,
        seq: 1,
        data: ['1'],
      }))
      items.push({ workerId: 'a', entryId: good, jobId: 'ok', seq: 1, data: ['1'] })
      expect(await appendChunks(conn, k, 60_000, items)).toEqual([
        'LOST',
        'LOST',
        'LOST',
        'LOST',
        'LOST',
        'OK',
      ])
      expect(await c.exists(...jobs.map((j) => outKey(k, j)))).toBe(0)
    } finally {
      conn.disconnect()
      await cleanupPool(c, pool)
    }
  })
})
