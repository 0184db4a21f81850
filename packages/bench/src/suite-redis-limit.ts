/**
 * The Redis limit: what this Redis does with `redis-benchmark` (50 clients) when it only runs
 * (1) Hedgeyard's own dispatch script, called as the library calls it, on a registered pool of
 * 8 workers, and (2) the plain commands one job needs at the least in any stream-based design:
 * XADD (queue it), XREADGROUP (read it), XACK (acknowledge it), SET (store its result), PUBLISH
 * (tell its producer). The limit in jobs/s of (2) is 1 / sum(1 / rate of each command).
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { PoolKeys } from 'hedgeyard'
import { Redis } from 'ioredis'
import { createBenchPool, jobPayload } from './bench-pool.js'
import { probeHealth } from './health-probe.js'
import { connectWithScripts, DISPATCH_LUA, DISPATCH_SHA1, dispatchArgs } from './library-scripts.js'
import type { BenchContext } from './measure-run.js'
import { redisCpuSeconds } from './redis-info.js'
import { type Spread, spread } from './stats.js'

const run = promisify(execFile)

export const REDIS_LIMIT_DEFAULTS = Object.freeze({
  clients: 50,
  requests: 50_000,
  batchRequests: 2_000,
  batch: 64,
})
const QUICK = Object.freeze({ requests: 2_000, batchRequests: 100 })

/** One redis-benchmark measurement. */
export interface LimitMeasurement {
  name: string
  pipeline: number
  /** Jobs each request carries (a batched dispatch call carries many). */
  jobsPerRequest: number
  requestsPerSecond: number
  /** Redis CPU per request (INFO cpu over the run), us. */
  redisUsPerRequest: number
}

export interface LimitRow {
  name: string
  pipeline: number
  jobsPerRequest: number
  requestsPerSecond: Spread
  jobsPerSecond: Spread
  redisUsPerJob: Spread
}

export interface RedisLimitResult {
  settings: { clients: number; requests: number; batchRequests: number; batch: number; repetitions: number }
  dispatchScriptSha1: string
  rows: LimitRow[]
  /** Jobs/s of the five plain commands one job needs: 1 / sum(1 / rate), per pipeline depth. */
  plainJobLimit: { pipeline: number; jobsPerSecond: Spread; redisUsPerJob: Spread }[]
}

const PLAIN = ['XADD', 'XREADGROUP', 'XACK', 'SET', 'PUBLISH'] as const

function parseCsv(stdout: string): number {
  const last = stdout.trim().split('\n').at(-1) ?? ''
  const numbers = /"([\d.]+)"(?:,"[\d.]+"){6}\s*$/.exec(last)
  if (numbers === null) throw new Error(`cannot read redis-benchmark output: ${stdout.slice(0, 300)}`)
  return Number(numbers[1])
}

export async function runRedisLimit(
  ctx: BenchContext,
  repetitions: number,
  port: number,
): Promise<RedisLimitResult> {
  const o = ctx.isQuick ? { ...REDIS_LIMIT_DEFAULTS, ...QUICK } : REDIS_LIMIT_DEFAULTS
  const envelope = '{"ok":true,"workerId":"bench-host-4242-1","attempt":1,"value":null}'
  const payload = jobPayload(0)
  const dispatchCommand = (batch: number, keys: PoolKeys) => {
    const call = { producerId: 'bench-producer', seed: 12_345, affinityTtlMs: 30_000, timeoutMs: 30_000 }
    const jobs = Array.from({ length: batch }, (_, i) => ({
      jobId: `job-${i}-__rand_int__`,
      session: '',
      payload,
      excluded: '',
    }))
    return ['EVALSHA', DISPATCH_SHA1, ...dispatchArgs(keys, call, jobs).args.map(String)]
  }

  const bench = async (
    name: string,
    pipeline: number,
    jobsPerRequest: number,
    requests: number,
    command: string[],
  ) => {
    const before = await redisCpuSeconds(ctx.conn)
    const args = [
      '-h',
      '127.0.0.1',
      '-p',
      port,
      '-c',
      o.clients,
      '-n',
      requests,
      '-P',
      pipeline,
      '-r',
      1_000_000,
    ]
    const { stdout } = await run('redis-benchmark', [...args.map(String), '--csv', ...command], {
      maxBuffer: 16 * 1024 * 1024,
    })
    const after = await redisCpuSeconds(ctx.conn)
    return {
      name,
      pipeline,
      jobsPerRequest,
      requestsPerSecond: parseCsv(stdout),
      redisUsPerRequest: ((after.total - before.total) * 1e6) / requests,
    }
  }

  const all: LimitMeasurement[] = []
  for (let rep = 1; rep <= repetitions; rep++) {
    await ctx.conn.call('FLUSHALL', 'SYNC')
    const conn = await connectWithScripts(ctx.redisUrl)
    const subscriber = new Redis(ctx.redisUrl)
    subscriber.on('error', () => {})
    try {
      await conn.script('LOAD', DISPATCH_LUA)
      const pool = await createBenchPool(conn, 'limit', 8, 8)
      await subscriber.subscribe('limit:results')
      const probe = await probeHealth(ctx.conn)
      ctx.log(
        `redis limit rep ${rep}/${repetitions}: probe: cpu loop ${probe.cpuLoopMs} ms, ping ${probe.pingUs} us`,
      )
      const found: LimitMeasurement[] = []
      const lone = dispatchCommand(1, pool.keys)
      for (const pipeline of [1, 16])
        found.push(await bench('dispatch script, 1 job per call', pipeline, 1, o.requests, lone))
      const batch = dispatchCommand(o.batch, pool.keys)
      found.push(await bench(`dispatch script, ${o.batch} jobs per call`, 1, o.batch, o.batchRequests, batch))
      for (const pipeline of [1, 16]) {
        await conn.del('limit:s')
        await conn.xgroup('CREATE', 'limit:s', 'g', '0', 'MKSTREAM')
        // The two fields of a plain job's entry, as the dispatch script writes them.
        const fields = [
          'job',
          'job-__rand_int__ bench-producer 1900000000000 1800000000000',
          'payload',
          payload,
        ]
        const commands: Record<(typeof PLAIN)[number], string[]> = {
          XADD: ['XADD', 'limit:s', '*', ...fields],
          // Reads each entry the XADD run queued once (as many requests as entries).
          XREADGROUP: ['XREADGROUP', 'GROUP', 'g', 'c', 'COUNT', '1', 'STREAMS', 'limit:s', '>'],
          // redis-benchmark cannot name the ids it read: acks of unknown ids, a lower bound of the cost.
          XACK: ['XACK', 'limit:s', 'g', '__rand_int__-0'],
          SET: ['SET', 'limit:res:__rand_int__', envelope, 'NX', 'PX', '60000'],
          // One subscriber listens, so Redis pays for the delivery too.
          PUBLISH: ['PUBLISH', 'limit:results', `job-__rand_int__ ${envelope}`],
        }
        for (const name of PLAIN) found.push(await bench(name, pipeline, 1, o.requests, commands[name]))
      }
      for (const m of found) {
        ctx.log(
          `  ${m.name} -P ${m.pipeline}: ${Math.round(m.requestsPerSecond)} requests/s ` +
            `(${Math.round(m.requestsPerSecond * m.jobsPerRequest)} jobs/s), ${m.redisUsPerRequest.toFixed(2)} us Redis CPU each`,
        )
      }
      all.push(...found)
    } finally {
      conn.disconnect()
      subscriber.disconnect()
    }
  }
  await ctx.conn.call('FLUSHALL', 'SYNC')

  const keys = [...new Set(all.map((m) => `${m.name}|${m.pipeline}`))]
  const rows = keys.map((key): LimitRow => {
    const list = all.filter((m) => `${m.name}|${m.pipeline}` === key)
    const first = list[0] as LimitMeasurement
    return {
      name: first.name,
      pipeline: first.pipeline,
      jobsPerRequest: first.jobsPerRequest,
      requestsPerSecond: spread(list.map((m) => m.requestsPerSecond)),
      jobsPerSecond: spread(list.map((m) => m.requestsPerSecond * m.jobsPerRequest)),
      redisUsPerJob: spread(list.map((m) => m.redisUsPerRequest / m.jobsPerRequest)),
    }
  })
  const plainJobLimit = [1, 16].map((pipeline) => {
    const perRep: { rate: number; cpu: number }[] = []
    for (let rep = 0; rep < repetitions; rep++) {
      const ofRep = PLAIN.map((name) => all.filter((m) => m.name === name && m.pipeline === pipeline)[rep])
      if (ofRep.some((m) => m === undefined)) continue
      const ms = ofRep as LimitMeasurement[]
      perRep.push({
        rate: 1 / ms.reduce((s, m) => s + 1 / m.requestsPerSecond, 0),
        cpu: ms.reduce((s, m) => s + m.redisUsPerRequest, 0),
      })
    }
    return {
      pipeline,
      jobsPerSecond: spread(perRep.map((r) => r.rate)),
      redisUsPerJob: spread(perRep.map((r) => r.cpu)),
    }
  })
  return {
    settings: {
      clients: o.clients,
      requests: o.requests,
      batchRequests: o.batchRequests,
      batch: o.batch,
      repetitions,
    },
    dispatchScriptSha1: DISPATCH_SHA1,
    rows,
    plainJobLimit,
  }
}
