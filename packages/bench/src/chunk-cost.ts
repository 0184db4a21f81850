/**
 * What a streamed job's write of chunks costs Redis, against the size of the job's request (its
 * entry's payload): `--jobs` streamed jobs per size, read by one worker (their entries pending
 * for it, as running jobs' are), each writes one chunk per `chunk` call, as a stream at a model's
 * pace does. For each size it times the library's `chunk` script on streams it began (chunk 1
 * names the copy, its producer and its keep, so a later chunk is taken without reading the
 * copy's entry), the same script on streams whose chunk 1 names no producer (it then reads the
 * copy's entry, request included, for every write), and a floor: the write alone, the same
 * XADD sent as a command. Every figure is Redis's own time (`INFO commandstats` usec) per write,
 * the median over `--writes` calls, the three kinds and the sizes taking turns call by call.
 *
 *   node packages/bench/dist/chunk-cost.js [--jobs 256] [--writes 40] [--sizes 100,2000,20000] [--redis <url>]
 */
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { poolKeys } from 'hedgeyard'
import {
  appendChunks,
  type ChunkItem,
  CONSUMER_GROUP,
  createConnection,
  entryFieldList,
  outKey,
  queueKey,
} from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { checkArgs, numberOption, type OptionSpec, runMain } from './cli.js'
import { fmt, markdownTable, spread } from './stats.js'

const USAGE =
  'usage: node packages/bench/dist/chunk-cost.js [--jobs 256] [--writes 40] [--sizes 100,2000,20000] [--redis <url>]'
const OPTIONS = {
  jobs: { type: 'string' },
  writes: { type: 'string' },
  sizes: { type: 'string' },
  redis: { type: 'string' },
} as const satisfies OptionSpec

type Kind = 'script' | 'entry read' | 'bare XADD'
const KINDS: readonly Kind[] = ['script', 'entry read', 'bare XADD']

/** One size's jobs of one kind: a pool of their own, their entries read by worker `w`. */
interface Case {
  size: number
  kind: Kind
  pool: string
  jobs: { id: string; entryId: string }[]
  usPerWrite: number[]
}

async function main(): Promise<number> {
  checkArgs('chunk-cost', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true, allowPositionals: false })
  const jobs = numberOption('jobs', values.jobs, 256)
  const writes = numberOption('writes', values.writes, 40, { min: 2 })
  const sizes = (values.sizes ?? '100,2000,20000')
    .split(',')
    .map((s) => numberOption('sizes', s, 0, { min: 0 }))
  const server = values.redis === undefined ? await startRedisServer() : undefined
  const url = values.redis ?? (server?.url as string)
  const r = new Redis(url)
  const conn = createConnection(url, 'command', 'hy:chunk-cost')
  try {
    await conn.connect()
    const cases: Case[] = []
    for (const size of sizes) {
      for (const kind of KINDS) {
        const pool = `chunk-cost-${size}-${kind.replace(' ', '-')}-${process.pid}`
        const k = poolKeys('hy', pool)
        const q = queueKey(k, 'w')
        await r.xgroup('CREATE', q, CONSUMER_GROUP, '0', 'MKSTREAM')
        const payload = JSON.stringify({ contents: 'x'.repeat(size) })
        const c: Case = { size, kind, pool, jobs: [], usPerWrite: [] }
        for (let i = 0; i < jobs; i++) {
          const id = `job-${i}`
          const fields = entryFieldList({ id, producer: 'p', race: 's', payload })
          c.jobs.push({ id, entryId: (await r.xadd(q, '*', ...fields)) as string })
        }
        await r.xreadgroup('GROUP', CONSUMER_GROUP, 'w', 'COUNT', jobs, 'STREAMS', q, '>')
        // Chunk 1: the script's own, or a first entry naming the copy but no producer.
        for (const j of c.jobs) {
          if (kind === 'script') continue
          const fields = kind === 'entry read' ? ['w', 'w', 'e', j.entryId] : []
          await r.xadd(outKey(k, j.id), '0-1', 'd', '1', ...fields)
        }
        if (kind === 'script') await write(conn, r, c, 1)
        cases.push(c)
      }
    }
    for (let seq = 2; seq < writes + 2; seq++) {
      // The cases take turns, in an order that alternates from one round to the next.
      for (const c of seq % 2 === 0 ? cases : [...cases].reverse())
        c.usPerWrite.push(await write(conn, r, c, seq))
      if ((seq - 1) % 10 === 0) process.stderr.write(`  ${seq - 1} of ${writes} calls per case\n`)
    }
    const spreads = cases.map((c) => ({ size: c.size, kind: c.kind, ...spread(c.usPerWrite) }))
    const cell = (size: number, kind: Kind) =>
      fmt(spreads.find((x) => x.size === size && x.kind === kind) ?? spread([]), 2)
    process.stdout.write(
      `Redis usec per write of one chunk: median (min-max) over ${writes} calls of ${jobs} writes each\n${markdownTable(
        [
          'request bytes',
          'chunk, the stream naming the copy',
          'chunk, the entry read each write',
          'the bare XADD',
        ],
        sizes.map((size) => [
          String(size),
          cell(size, 'script'),
          cell(size, 'entry read'),
          cell(size, 'bare XADD'),
        ]),
      )}\n`,
    )
    process.stdout.write(`${JSON.stringify({ jobs, writes, figures: spreads })}\n`)
    return 0
  } finally {
    conn.disconnect()
    r.disconnect()
    await server?.stop()
  }
}

/** One call of a case (chunk `seq` of each of its jobs); returns Redis's usec per write. */
async function write(
  conn: ReturnType<typeof createConnection>,
  r: Redis,
  c: Case,
  seq: number,
): Promise<number> {
  const k = poolKeys('hy', c.pool)
  const data = JSON.stringify({ i: seq, t: 123_456_789.123 })
  const before = await usecOf(r, c.kind === 'bare XADD' ? 'xadd' : 'evalsha')
  if (c.kind === 'bare XADD') {
    const pipeline = r.pipeline()
    for (const j of c.jobs) pipeline.xadd(outKey(k, j.id), `0-${seq}`, 'd', data)
    await pipeline.exec()
  } else {
    const items: ChunkItem[] = c.jobs.map((j) => ({
      workerId: 'w',
      entryId: j.entryId,
      jobId: j.id,
      seq,
      data: [data],
    }))
    const statuses = await appendChunks(conn, k, 60_000, items)
    const refused = statuses.find((s) => s !== 'OK')
    if (refused !== undefined) throw new Error(`chunk ${seq} of ${c.kind} at ${c.size} bytes: ${refused}`)
  }
  return ((await usecOf(r, c.kind === 'bare XADD' ? 'xadd' : 'evalsha')) - before) / c.jobs.length
}

async function usecOf(r: Redis, command: string): Promise<number> {
  const stats = await r.info('commandstats')
  return Number(new RegExp(`cmdstat_${command}:calls=\\d+,usec=(\\d+)`).exec(stats)?.[1] ?? 0)
}

runMain(main)
