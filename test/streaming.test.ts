import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fakeWorkers } from '@hedgeyard/testing/fake-pool'
import {
  CLI,
  client,
  clientConnections,
  eventually,
  FIXTURES,
  killConnection,
  loadAndLengths,
  publishAsScripts,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { Dispatcher, type HedgeyardError, isHedgeyardError, poolKeys, type StreamChunk } from 'hedgeyard'
import {
  affinityKey,
  entryFields,
  outKey,
  PUSH_IDLE_MS,
  queueKey as queueKeyOf,
  resultChannel,
} from 'hedgeyard/internal'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const c = client()
const running: WorkerProcess[] = []
const children: ChildProcess[] = []
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
  for (const child of children.splice(0)) child.kill('SIGKILL')
  for (const close of closers.splice(0).reverse()) await close()
})
afterAll(() => c.disconnect())

interface Chunk {
  i: number
  w: string
  at: number
}

function dispatcher(pool: string): Dispatcher {
  const d = new Dispatcher({ redis: redisUrl(), pool })
  closers.push(() => d.close())
  return d
}

async function streamWorker(
  pool: string,
  options: { idPrefix?: string; speedMs?: number; extraArgs?: string[]; concurrency?: number } = {},
) {
  const w = await spawnWorker({
    pool,
    handler: 'stream.js',
    concurrency: options.concurrency ?? 8,
    ...(options.idPrefix ? { idPrefix: options.idPrefix } : {}),
    env: { SPEED_MS: String(options.speedMs ?? 0) },
    extraArgs: options.extraArgs ?? [],
  })
  running.push(w)
  return w
}

/** Reads a stream to its end: the chunks, and the result or the error. */
async function drain(stream: AsyncIterable<StreamChunk> & { result: Promise<unknown> }) {
  const chunks: StreamChunk<Chunk>[] = []
  let error: HedgeyardError | undefined
  try {
    for await (const chunk of stream) chunks.push(chunk as StreamChunk<Chunk>)
  } catch (err) {
    if (!isHedgeyardError(err)) throw err
    error = err
  }
  const result = error ? undefined : await stream.result
  return { chunks, error, result }
}

async function settled(pool: string) {
  await eventually(
    async () => (await loadAndLengths(c, pool)).every((w) => w.load === 0 && w.xlen === 0),
    10_000,
  )
}

describe('streaming across processes', () => {
  it('delivers every chunk in order, then the result, for streams running side by side, all pushed', async () => {
    const pool = uniquePool('stream')
    await streamWorker(pool)
    const d = dispatcher(pool)
    const runs = await Promise.all([5, 20, 1].map((n) => drain(d.stream({ chunks: n, everyMs: 2 }) as never)))
    for (const [k, n] of [5, 20, 1].entries()) {
      const { chunks, error, result } = runs[k] as Awaited<ReturnType<typeof drain>>
      expect(error).toBeUndefined()
      expect(chunks.map((c) => c.seq)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
      expect(chunks.map((c) => c.data.i)).toEqual(Array.from({ length: n }, (_, i) => i + 1))
      expect(result).toMatchObject({ chunks: n })
    }
    // Every chunk and end came pushed: the producer never needed to read a stream (its reading
    // connection opens with the first stream handed to it).
    const names = (await clientConnections(c)).map((conn) => conn.name)
    expect(names).toContain(`hy:results:${d.producerId}`)
    expect(names).not.toContain(`hy:streams:${d.producerId}`)
    await settled(pool)
  })

  it('says when a job is queued, and any process can read where it stands', async () => {
    const pool = uniquePool('stream-state')
    const d = dispatcher(pool)
    const nowhere = d.stream({ chunks: 1 })
    await expect(nowhere.queued).rejects.toMatchObject({ code: 'NO_WORKERS' })
    await streamWorker(pool)
    const other = dispatcher(pool)
    // Connected before the job starts (on a cluster, connecting can take longer than a short job).
    await other.workerMetrics()
    const stream = d.stream({ chunks: 3, everyMs: 300 })
    await stream.queued
    expect(await other.getJob(stream.jobId)).toEqual({ status: 'pending' })
    const { result } = await drain(stream as never)
    expect(await other.getJob(stream.jobId)).toEqual({ status: 'completed', result })
    const failing = d.stream({ chunks: 3, failAt: 1 })
    await drain(failing as never)
    expect(await other.getJob(failing.jobId)).toMatchObject({
      status: 'failed',
      error: { code: 'HANDLER_ERROR', message: expect.stringContaining('failed before chunk 1') },
    })
    expect(await other.getJob('no-such-job')).toEqual({ status: 'unknown' })
  })

  it('throws at once for bad options, tied hedging, a payload too large or a closed dispatcher', async () => {
    const pool = uniquePool('stream-refused')
    const d = new Dispatcher({ redis: redisUrl(), pool, maxPayloadBytes: 100 })
    const thrown = (f: () => unknown) => {
      try {
        f()
      } catch (err) {
        return err
      }
      return 'returned'
    }
    expect(thrown(() => d.stream({}, { timeoutMs: -1 }))).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(thrown(() => d.stream({}, { hedge: { mode: 'tied' } }))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: expect.stringContaining("hedge.mode 'tied' is not for streams"),
    })
    expect(thrown(() => d.stream({ big: 'x'.repeat(200) }))).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' })
    await d.close()
    expect(thrown(() => d.stream({}))).toMatchObject({ code: 'CLOSED' })
  })

  it('a plain submit to a streaming handler gets its return value', async () => {
    const pool = uniquePool('stream-submit')
    await streamWorker(pool)
    const d = dispatcher(pool)
    await expect(d.submit({ chunks: 4 })).resolves.toMatchObject({ chunks: 4 })
  })

  it('resumes from another process after the first producer was killed, without gaps or duplicates', async () => {
    const pool = uniquePool('stream-resume')
    await streamWorker(pool)
    const producer = spawn(
      process.execPath,
      [join(FIXTURES, 'stream-producer.js'), redisUrl(), pool, '12', '60'],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    children.push(producer)
    let out = ''
    producer.stdout?.on('data', (d) => {
      out += d
    })
    await eventually(() => /chunk 3\n/.test(out), 10_000)
    producer.kill('SIGKILL')
    const jobId = /job (\S+)/.exec(out)?.[1] as string
    const seen = [...out.matchAll(/chunk (\d+)/g)].map((m) => Number(m[1]))
    const last = seen[seen.length - 1] as number
    const d = dispatcher(pool)
    const { chunks, error, result } = await drain(d.resume(jobId, { after: last }) as never)
    expect(error).toBeUndefined()
    expect([...seen, ...chunks.map((c) => c.seq)]).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    expect(result).toMatchObject({ chunks: 12 })
    // The whole stream again, from the start, from yet another dispatcher.
    const again = await drain(dispatcher(pool).resume(jobId) as never)
    expect(again.chunks.map((c) => c.seq)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1))
    await expect(drain(d.resume('no-such-job') as never)).resolves.toMatchObject({
      error: { code: 'NOT_FOUND' },
    })
  })

  it('resumes after a chunk in the middle of a write that held several', async () => {
    const pool = uniquePool('stream-mid')
    await streamWorker(pool)
    const d = dispatcher(pool)
    // Yielded without a pause: the chunks yielded while a write is under way go together.
    const stream = d.stream({ chunks: 40 })
    await drain(stream as never)
    const { chunks } = await drain(dispatcher(pool).resume(stream.jobId, { after: 17 }) as never)
    expect(chunks.map((c) => c.seq)).toEqual(Array.from({ length: 23 }, (_, i) => i + 18))
    expect(chunks.map((c) => c.data.i)).toEqual(Array.from({ length: 23 }, (_, i) => i + 18))
    // The same from a stream written as the chunk script writes it: chunks 1-2, then 3-6 in one entry.
    const key = outKey(poolKeys('hy', pool), 'handmade-1')
    await c.xadd(key, '0-2', 'b', '[{"i":1},{"i":2}]', 'n', '2', 'w', 'x-1', 'e', '1-0')
    await c.xadd(key, '0-6', 'b', '[{"i":3},{"i":4},{"i":5},{"i":6}]', 'n', '4')
    await c.xadd(key, '0-*', 'end', '{"ok":true,"workerId":"x-1","value":"done"}')
    const handmade = await drain(d.resume('handmade-1', { after: 4 }) as never)
    expect(handmade.chunks.map((c) => [c.seq, c.data.i])).toEqual([
      [5, 5],
      [6, 6],
    ])
    expect(handmade.result).toBe('done')
  })

  it('picks up where it was after its subscriber, then its reading connection, is killed', async () => {
    const pool = uniquePool('stream-reconnect')
    await streamWorker(pool)
    const d = dispatcher(pool)
    const stream = d.stream({ chunks: 30, everyMs: 20 })
    const seqs: number[] = []
    const killed: string[] = []
    // The chunks come pushed over the subscriber; once it is killed (pushes lost), from the
    // stream through the reading connection, which is killed next.
    const kill = async (name: string) => {
      // This dispatcher's connections only: other files' tests share the server.
      for (const conn of await clientConnections(c))
        if (conn.name === name && (await killConnection(conn)) > 0) killed.push(name)
    }
    for await (const chunk of stream) {
      seqs.push(chunk.seq)
      if (chunk.seq === 5) await kill(`hy:results:${d.producerId}`)
      if (chunk.seq === 15) await kill(`hy:streams:${d.producerId}`)
    }
    expect(killed).toEqual([`hy:results:${d.producerId}`, `hy:streams:${d.producerId}`])
    expect(seqs).toEqual(Array.from({ length: 30 }, (_, i) => i + 1))
    await expect(stream.result).resolves.toMatchObject({ chunks: 30 })
  })

  it('reads a stream from Redis when its pushes show a gap, when none come, or when one cannot be read', async () => {
    const pool = uniquePool('stream-no-push')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const d = dispatcher(pool)
    const push = (jobId: string, records: [string, string][]) =>
      publishAsScripts(
        c,
        resultChannel(k, d.producerId),
        `~\n${records.map(([head, data]) => `${jobId} ${head} ${Buffer.byteLength(data)}\n${data}`).join('\n')}`,
      )
    try {
      // Chunks 1-2 pushed, 3 written but its push lost, 4 pushed: the gap sends the stream to
      // the reader, which brings 3 and 4 once (not 4 twice) and then the end.
      const gap = d.stream({})
      await gap.queued
      const [[entryId]] = (await c.xrange(queueKeyOf(k, 'a'), '-', '+')) as [[string, string[]]]
      const gapOut = outKey(k, gap.jobId)
      await c.xadd(gapOut, '0-2', 'b', '[1,2]', 'n', '2', 'w', 'a', 'e', entryId)
      await push(gap.jobId, [[`1 2 a ${entryId}`, '[1,2]']])
      await c.xadd(gapOut, '0-3', 'd', '3')
      await c.xadd(gapOut, '0-4', 'd', '4')
      await push(gap.jobId, [['4 1 - -', '4']])
      await c.xadd(gapOut, '0-*', 'end', '{"ok":true,"value":"done"}')
      const atGap = Date.now()
      const drained = await drain(gap as never)
      expect(drained.chunks.map((chunk) => chunk.data)).toEqual([1, 2, 3, 4])
      await expect(gap.result).resolves.toBe('done')
      expect(Date.now() - atGap).toBeLessThan(PUSH_IDLE_MS)
      // A stream that hears no push at all (written by hand) is read after PUSH_IDLE_MS.
      const quiet = d.stream({})
      await quiet.queued
      const [, [quietEntry]] = (await c.xrange(queueKeyOf(k, 'a'), '-', '+')) as [unknown, [string]]
      await c.xadd(outKey(k, quiet.jobId), '0-1', 'd', '"x"', 'w', 'a', 'e', quietEntry)
      await c.xadd(outKey(k, quiet.jobId), '0-*', 'end', '{"ok":true,"value":1}')
      const started = Date.now()
      expect((await drain(quiet as never)).chunks.map((chunk) => chunk.data)).toEqual(['x'])
      expect(Date.now() - started).toBeGreaterThanOrEqual(PUSH_IDLE_MS - 100)
      // A message of pushes that cannot be read (written by someone else) sends every stream
      // fed by pushes to the reader at once.
      const garbled = d.stream({})
      await garbled.queued
      const [, , [garbledEntry]] = (await c.xrange(queueKeyOf(k, 'a'), '-', '+')) as [
        unknown,
        unknown,
        [string],
      ]
      await c.xadd(outKey(k, garbled.jobId), '0-1', 'd', '7', 'w', 'a', 'e', garbledEntry)
      await c.xadd(outKey(k, garbled.jobId), '0-*', 'end', '{"ok":true,"value":7}')
      await publishAsScripts(c, resultChannel(k, d.producerId), `~\n${garbled.jobId} 1 1 - - 999\n7`)
      const fast = Date.now()
      expect((await drain(garbled as never)).chunks.map((chunk) => chunk.data)).toEqual([7])
      expect(Date.now() - fast).toBeLessThan(PUSH_IDLE_MS)
    } finally {
      fake.disconnect()
    }
  })

  it('hedges to the first chunk: the fast copy owns the stream and the slow copy is cancelled', async () => {
    const pool = uniquePool('stream-hedge')
    const keys = poolKeys('hy', pool)
    const slow = await streamWorker(pool, { idPrefix: 'slow', speedMs: 2_000 })
    const d = dispatcher(pool)
    // Bind the session to the slow worker while it is the only one.
    const warm = drain(d.stream({ chunks: 1 }, { session: 'chat' }) as never)
    await eventually(async () => (await c.get(affinityKey(keys, 'chat'))) === 'slow-1')
    await warm
    await streamWorker(pool, { idPrefix: 'fast' })
    const started = Date.now()
    const stream = d.stream({ chunks: 5, everyMs: 5 }, { session: 'chat', hedge: { delayMs: 200 } })
    const { chunks, error, result } = await drain(stream as never)
    expect(error).toBeUndefined()
    expect(chunks.map((c) => c.data.w)).toEqual(Array(5).fill('fast-1'))
    expect(result).toMatchObject({ workerId: 'fast-1' })
    expect(Date.now() - started).toBeLessThan(1_900)
    await eventually(
      () =>
        new RegExp(`aborted ${stream.jobId} attempt 1: cancelled: another copy of this job began`).test(
          slow.output(),
        ),
      3_000,
    )
    await settled(pool)
  })

  it('cancels a running stream from the CLI, and says so for a finished or unknown job', async () => {
    const pool = uniquePool('stream-cancel')
    const w = await streamWorker(pool)
    const d = dispatcher(pool)
    const stream = d.stream({ chunks: 100, everyMs: 50 })
    const chunks: number[] = []
    const reading = (async () => {
      for await (const chunk of stream) chunks.push(chunk.seq)
    })().catch((err: unknown) => err)
    await eventually(() => chunks.length >= 2)
    const cli = (...args: string[]) =>
      run(process.execPath, [CLI, ...args, '--redis', redisUrl(), '--pool', pool]).catch(
        (err: { stdout: string; stderr: string; code: number }) => err,
      )
    const first = await cli('cancel', stream.jobId)
    expect(first.stdout).toBe(`cancelled ${stream.jobId}\n`)
    await expect(reading).resolves.toMatchObject({ code: 'CANCELLED' })
    await expect(stream.result).rejects.toMatchObject({ code: 'CANCELLED' })
    expect(chunks.length).toBeLessThan(100)
    await eventually(() =>
      w.output().includes(`aborted ${stream.jobId} attempt 1: cancelled: the job was cancelled`),
    )
    const again = await cli('cancel', stream.jobId)
    expect(again.stdout).toContain('has finished already; nothing changed')
    const unknown = (await cli('cancel', 'no-such-job')) as { stderr: string; code: number }
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('error NOT_FOUND')
    await settled(pool)
  })

  it('hedgeyard submit --stream prints each chunk as a JSON line, then the result; resume --after follows the job from another process', async () => {
    const pool = uniquePool('stream-cli')
    await streamWorker(pool)
    const args = ['--redis', redisUrl(), '--pool', pool]
    const whole = await run(process.execPath, [CLI, 'submit', ...args, '--stream', '{"chunks":3}'])
    const lines = whole.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines.slice(0, 3).map((l) => l.seq)).toEqual([1, 2, 3])
    expect(lines[3]).toEqual({ result: expect.objectContaining({ chunks: 3 }) })
    const jobId = /^job (\S+)$/m.exec(whole.stderr)?.[1] as string
    const resumed = await run(process.execPath, [CLI, 'resume', ...args, '--after', '1', jobId])
    const again = resumed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(again.map((l) => l.seq ?? 'end')).toEqual([2, 3, 'end'])
    expect(again[2]).toEqual(lines[3])
  })

  it('ends the job of a caller that leaves, aborts or runs out of time, for every reader; a handler failing after chunks ends it with HANDLER_ERROR', async () => {
    const pool = uniquePool('stream-ends')
    const w = await streamWorker(pool)
    const d = dispatcher(pool)
    const other = dispatcher(pool)
    // A handler that throws after two chunks: the caller gets them, then its error.
    const failing = await drain(d.stream({ chunks: 5, failAt: 3 }) as never)
    expect(failing.chunks.map((c) => c.seq)).toEqual([1, 2])
    expect(failing.error).toMatchObject({ code: 'HANDLER_ERROR' })
    // Leaving the loop after the first chunk cancels the job on its worker.
    const left = d.stream({ chunks: 100, everyMs: 100 })
    for await (const _ of left) break
    await expect(left.result).rejects.toMatchObject({ code: 'CANCELLED' })
    await eventually(() => w.output().includes(`aborted ${left.jobId} attempt 1`))
    expect(await other.getJob(left.jobId)).toMatchObject({ status: 'failed', error: { code: 'CANCELLED' } })
    // Aborting the signal: ABORTED, for this reader and in Redis.
    const ctrl = new AbortController()
    const aborted = d.stream({ chunks: 100, everyMs: 100 }, { signal: ctrl.signal })
    const reading = drain(aborted as never)
    await eventually(async () => (await c.xlen(outKey(poolKeys('hy', pool), aborted.jobId))) > 0)
    ctrl.abort()
    expect((await reading).error).toMatchObject({ code: 'ABORTED' })
    await eventually(() => w.output().includes(`aborted ${aborted.jobId} attempt 1`))
    expect(await other.getJob(aborted.jobId)).toMatchObject({ status: 'failed', error: { code: 'ABORTED' } })
    // Past its timeoutMs the stream ends with TIMEOUT, for a reader in another dispatcher too.
    const slow = d.stream({ chunks: 100, everyMs: 200 }, { timeoutMs: 1_500 })
    await slow.queued
    const [own, follower] = await Promise.all([
      drain(slow as never),
      drain(other.resume(slow.jobId) as never),
    ])
    expect(own.error).toMatchObject({ code: 'TIMEOUT' })
    expect(follower.error).toMatchObject({ code: 'TIMEOUT' })
    expect(follower.chunks.map((c) => c.seq)).toEqual(own.chunks.map((c) => c.seq))
    await eventually(() => w.output().includes(`aborted ${slow.jobId} attempt 1`))
    await settled(pool)
  })

  it('cancels queued copies out of their stream with their load, and a plain submit too', async () => {
    const pool = uniquePool('stream-cancel-queued')
    await streamWorker(pool, { concurrency: 1 })
    const d = dispatcher(pool)
    const busy = d.stream({ chunks: 1, hang: true }, { timeoutMs: 5_000 })
    await eventually(async () => (await loadAndLengths(c, pool))[0]?.load === 1)
    const queuedStream = d.stream({ chunks: 3 })
    const queuedSubmit = d.submit({ chunks: 3 }).catch((err: unknown) => err)
    await eventually(async () => (await loadAndLengths(c, pool))[0]?.load === 3)
    expect(await d.cancel(queuedStream.jobId)).toBe('cancelled')
    await expect(drain(queuedStream as never)).resolves.toMatchObject({
      chunks: [],
      error: { code: 'CANCELLED' },
    })
    await eventually(async () => (await loadAndLengths(c, pool))[0]?.load === 2)
    // A plain job has no copies hash: its entry is found in the workers' streams.
    const submitId = await eventually(async () => {
      const entries = (await c.xrange(
        `hy:{${pool}}:q:${(await loadAndLengths(c, pool))[0]?.workerId}`,
        '-',
        '+',
      )) as [string, string[]][]
      const last = entries[entries.length - 1]
      return last && entryFields(last[1]).id
    })
    expect(await d.cancel(submitId as string)).toBe('cancelled')
    await expect(queuedSubmit).resolves.toMatchObject({ code: 'CANCELLED' })
    await eventually(async () => (await loadAndLengths(c, pool))[0]?.load === 1)
    expect(await d.cancel(busy.jobId)).toBe('cancelled')
    await settled(pool)
  })

  it('delivers the chunks a copy wrote before it failed, when its failure is heard before them', async () => {
    const pool = uniquePool('stream-fail-order')
    const fake = await fakeWorkers(redisUrl(), pool, { a: 0 })
    const k = poolKeys('hy', pool)
    const d = dispatcher(pool)
    try {
      for (let round = 0; round < 10; round++) {
        const stream = d.stream({ round })
        await stream.queued
        const [[entryId]] = (await c.xrange(queueKeyOf(k, 'a'), '-', '+')) as [[string, string[]]]
        const envelope = JSON.stringify({
          ok: false,
          workerId: 'a',
          copy: 1,
          error: { code: 'HANDLER_ERROR', name: 'Error', message: `boom ${round}` },
        })
        // As the copy's chunks and then its completion would write them, the failure published in
        // the same step as the chunks (its pub/sub message can reach the producer first), the end
        // entry and its push a moment later.
        const chunks = '[{"i":1},{"i":2}]'
        await c
          .multi()
          .xadd(outKey(k, stream.jobId), '0-2', 'b', chunks, 'n', '2', 'w', 'a', 'e', entryId)
          .xdel(queueKeyOf(k, 'a'), entryId)
          .publish(resultChannel(k, d.producerId), `${stream.jobId} ${envelope}`)
          .publish(
            resultChannel(k, d.producerId),
            `~\n${stream.jobId} 1 2 a ${entryId} ${chunks.length}\n${chunks}`,
          )
          .exec()
        setTimeout(() => {
          void c
            .multi()
            .xadd(outKey(k, stream.jobId), '0-*', 'end', envelope)
            .publish(
              resultChannel(k, d.producerId),
              `~\n${stream.jobId} end 3 - - ${envelope.length}\n${envelope}`,
            )
            .exec()
        }, 50)
        const drained = await drain(stream as never)
        expect(drained.chunks.map((chunk) => chunk.seq)).toEqual([1, 2])
        expect(drained.error?.message).toContain(`boom ${round}`)
      }
    } finally {
      fake.disconnect()
    }
  })

  it('ends a stream past its chunk cap or with a chunk too large with STREAM_OVERFLOW, on both sides', async () => {
    const pool = uniquePool('stream-overflow')
    const w = await streamWorker(pool, { extraArgs: ['--max-chunks', '5', '--max-chunk-bytes', '1000'] })
    const d = dispatcher(pool)
    const manyStream = d.stream({ chunks: 8 })
    const many = await drain(manyStream as never)
    expect(many.chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4, 5])
    expect(many.error?.code).toBe('STREAM_OVERFLOW')
    expect(many.error?.message).toContain('maxChunks (5)')
    const big = d.stream({ chunks: 2, big: 2_000 })
    const large = await drain(big as never)
    expect(large.chunks).toEqual([])
    expect(large.error?.code).toBe('STREAM_OVERFLOW')
    expect(large.error?.message).toContain('maxChunkBytes is 1000')
    // The handler saw it too: its signal was aborted with the overflow.
    await eventually(() => w.output().includes(`aborted ${big.jobId} attempt 1: chunk 1 takes`))
    // Nothing past the cap reached Redis: the output stream holds the 5 chunks (one entry per
    // write: chunks yielded while a write was under way go together) and the end.
    await settled(pool)
    const entries = await c.xrange(outKey(poolKeys('hy', pool), manyStream.jobId), '-', '+')
    expect(entries.at(-1)?.[0]).toBe('0-6')
    expect(entries.at(-2)?.[0]).toBe('0-5')
  })

  it('rescues a stream whose worker was killed before its first chunk: it starts again elsewhere', async () => {
    const pool = uniquePool('stream-kill-before')
    const lease = ['--lease-ms', '1000']
    const doomed = await streamWorker(pool, { idPrefix: 'doomed', speedMs: 30_000, extraArgs: lease })
    const d = dispatcher(pool)
    const stream = d.stream({ chunks: 4 }, { timeoutMs: 20_000 })
    await eventually(() => doomed.output().includes(`started ${stream.jobId}`), 5_000)
    await doomed.stop('SIGKILL')
    await streamWorker(pool, { idPrefix: 'spare', extraArgs: lease })
    const { chunks, error, result } = await drain(stream as never)
    expect(error).toBeUndefined()
    expect(chunks.map((c) => c.seq)).toEqual([1, 2, 3, 4])
    expect(chunks.every((c) => c.data.w === 'spare-1')).toBe(true)
    expect(result).toMatchObject({ workerId: 'spare-1' })
  })

  it('ends a stream whose worker was killed after its first chunk with WORKER_LOST', async () => {
    const pool = uniquePool('stream-kill-after')
    const lease = ['--lease-ms', '1000']
    const doomed = await streamWorker(pool, { idPrefix: 'doomed', extraArgs: lease })
    const d = dispatcher(pool)
    const stream = d.stream({ chunks: 50, everyMs: 200 }, { timeoutMs: 20_000 })
    const seqs: number[] = []
    let error: unknown
    try {
      for await (const chunk of stream) {
        seqs.push(chunk.seq)
        if (chunk.seq === 2) {
          await doomed.stop('SIGKILL')
          // A live worker's heartbeat runs the rescue.
          await streamWorker(pool, { idPrefix: 'spare', extraArgs: lease })
        }
      }
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ code: 'WORKER_LOST' })
    expect(seqs.slice(0, 2)).toEqual([1, 2])
    expect(seqs.length).toBeLessThan(10)
    await settled(pool)
  })

  it('ends a stream with WORKER_LOST when its worker restarts with the same id after the first chunk', async () => {
    const pool = uniquePool('stream-restart')
    const worker = await streamWorker(pool, { idPrefix: 'again' })
    const d = dispatcher(pool)
    const stream = d.stream({ chunks: 50, everyMs: 200 }, { timeoutMs: 20_000 })
    const seqs: number[] = []
    let error: unknown
    try {
      for await (const chunk of stream) {
        seqs.push(chunk.seq)
        if (chunk.seq === 2) {
          await worker.stop('SIGKILL')
          // The same id: it finds the entry it had read, whose stream it cannot continue.
          await streamWorker(pool, { idPrefix: 'again' })
        }
      }
    } catch (err) {
      error = err
    }
    expect(error).toMatchObject({ code: 'WORKER_LOST' })
    expect(seqs.slice(0, 2)).toEqual([1, 2])
    expect(seqs.length).toBeLessThan(10)
    await settled(pool)
  })
})
