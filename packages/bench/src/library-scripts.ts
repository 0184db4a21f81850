/**
 * The library's dispatch script as its build embeds it, and its encoder of dispatch calls, from
 * `hedgeyard/internal` (the entry the library keeps for its own tests and benchmarks): the
 * benchmarks that call the script directly (the dispatch cost, the routing policies, the Redis
 * limit) measure what ships, called with the arguments the library sends.
 */
import { createHash } from 'node:crypto'
import type { PoolKeys } from 'hedgeyard'
import {
  type Connection,
  createConnection,
  dispatchArgs as encodeDispatch,
  LUA_SCRIPTS,
} from 'hedgeyard/internal'
import { DISPATCH_FLOOR_LUA } from './dispatch-floor.js'

/** The dispatch script's text, as `SCRIPT LOAD` takes it. */
export const DISPATCH_LUA = LUA_SCRIPTS.dispatch.lua
/** Its SHA1, the name `EVALSHA` calls it by, recorded with every result. */
export const DISPATCH_SHA1 = createHash('sha1').update(DISPATCH_LUA).digest('hex')

/** A command connection made by the library's own factory, with suite d's floor script defined too. */
export type BenchConnection = Connection & {
  dispatchFloor(...numKeysKeysAndArgs: (string | number)[]): Promise<unknown>
}

/** One job of a dispatch call: a first attempt, one copy. */
export interface DispatchJob {
  jobId: string
  session: string
  payload: string
  /** Worker ids the job must not go to, joined by ','; '' for none. */
  excluded: string
}

/** What a dispatch call carries besides its jobs, as a Dispatcher without `resultTtlMs` sends it. */
export interface DispatchCall {
  producerId: string
  seed: number
  affinityTtlMs: number
  timeoutMs: number
}

/** Attempts a job may use before it is dead-lettered: the Dispatcher's default. */
const MAX_ATTEMPTS = 3

/**
 * The number of keys, the KEYS, then ARGV of a dispatch call carrying `jobs`, and the records its
 * reply is read by (`parseDispatchReply` of `hedgeyard/internal`).
 */
export function dispatchArgs(
  keys: PoolKeys,
  call: DispatchCall,
  jobs: readonly DispatchJob[],
): { args: (string | number)[]; records: number[] } {
  const { producerId, seed, affinityTtlMs, timeoutMs } = call
  const encoded = encodeDispatch(
    keys,
    { producerId, seed, affinityTtlMs, resultTtlMs: undefined },
    jobs.map((job) => ({
      jobId: job.jobId,
      session: job.session,
      payload: job.payload,
      timeoutMs,
      attempt: 1,
      maxAttempts: MAX_ATTEMPTS,
      exclude: job.excluded,
      race: '',
      copies: 1,
    })),
  )
  return { args: [encoded.keys.length, ...encoded.keys, ...encoded.args], records: encoded.records }
}

/** A command connection made as the library makes its own (scripts defined, EVALSHA), connected. */
export async function connectWithScripts(url: string): Promise<BenchConnection> {
  const conn = createConnection(url, 'command', 'hy:bench') as BenchConnection
  conn.defineCommand('dispatchFloor', { lua: DISPATCH_FLOOR_LUA })
  await conn.connect()
  return conn
}
