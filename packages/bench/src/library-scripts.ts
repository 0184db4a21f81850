import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
// Types only (erased at run time): the encoder itself is loaded from the built library below.
import type { dispatchCallArgs } from '../../hedgeyard/src/protocol/dispatch-call.js'
import { DISPATCH_FLOOR_LUA } from './dispatch-floor.js'

/** One embedded script of the library, as its build generated it. */
export interface LibraryScript {
  numberOfKeys: number
  lua: string
  /** SHA1 of the script text: the name `SCRIPT LOAD` gives it, recorded with every result. */
  sha1: string
}

/** The library's encoder of a dispatch call: KEYS then ARGV, as its DispatchBatcher sends them. */
export type DispatchCallArgs = typeof dispatchCallArgs

/** The scripts the benchmarks call, and how the library encodes a dispatch call. */
export interface LibraryScripts {
  dispatch: LibraryScript
  register: LibraryScript
  dispatchCallArgs: DispatchCallArgs
}

/**
 * A connection with the library's scripts defined on it (EVALSHA, reloaded after NOSCRIPT), and
 * suite d's floor (dispatch-floor.ts), which takes the dispatch script's arguments.
 */
export type BenchConnection = Redis & {
  dispatch(...keysAndArgs: (string | number)[]): Promise<unknown>
  dispatchFloor(...keysAndArgs: (string | number)[]): Promise<unknown>
  register(...keysAndArgs: (string | number)[]): Promise<unknown>
}

function asScript(value: unknown, name: string): LibraryScript {
  const v = value as { numberOfKeys?: unknown; lua?: unknown } | undefined
  if (typeof v?.numberOfKeys !== 'number' || typeof v.lua !== 'string') {
    throw new Error(`hedgeyard's generated scripts have no '${name}' script: rebuild it (pnpm run build)`)
  }
  return { numberOfKeys: v.numberOfKeys, lua: v.lua, sha1: createHash('sha1').update(v.lua).digest('hex') }
}

/**
 * Loads the scripts exactly as the built library embeds them (`LUA_SCRIPTS` of
 * `dist/protocol/lua/scripts.generated.js`), and the encoder of its dispatch calls
 * (`dist/protocol/dispatch-call.js`). The package's exports map does not expose those modules, so
 * they are imported by file URL next to the resolved entry point; the `.lua` sources are not read
 * because the build may expand them (`--!include`), and the benchmark must measure what ships,
 * called with the arguments the library sends.
 */
export async function loadLibraryScripts(): Promise<LibraryScripts> {
  const entry = import.meta.resolve('hedgeyard')
  const generated = new URL('./protocol/lua/scripts.generated.js', entry)
  const module = (await import(generated.href)) as { LUA_SCRIPTS?: Record<string, unknown> }
  const all = module.LUA_SCRIPTS ?? {}
  const call = (await import(new URL('./protocol/dispatch-call.js', entry).href)) as {
    dispatchCallArgs?: unknown
  }
  if (typeof call.dispatchCallArgs !== 'function') {
    throw new Error("hedgeyard's build has no dispatchCallArgs in protocol/dispatch-call.js: rebuild it")
  }
  return {
    dispatch: asScript(all.dispatch, 'dispatch'),
    register: asScript(all.register, 'register'),
    dispatchCallArgs: call.dispatchCallArgs as DispatchCallArgs,
  }
}

/**
 * A command connection set up like the library's own (`createConnection(..., 'command', ...)`, not
 * exported): RESP2, no auto-pipelining, no offline queue, a `CLIENT SETNAME`, the scripts defined.
 */
export async function connectWithScripts(url: string, scripts: LibraryScripts): Promise<BenchConnection> {
  const conn = new Redis(url, {
    protocol: 2,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    enableAutoPipelining: false,
    connectionName: 'hy:bench',
  }) as BenchConnection
  conn.on('error', () => {})
  for (const name of ['dispatch', 'register'] as const) {
    conn.defineCommand(name, { numberOfKeys: scripts[name].numberOfKeys, lua: scripts[name].lua })
  }
  conn.defineCommand('dispatchFloor', {
    numberOfKeys: scripts.dispatch.numberOfKeys,
    lua: DISPATCH_FLOOR_LUA,
  })
  await conn.connect()
  return conn
}
