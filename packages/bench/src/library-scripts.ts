import { createHash } from 'node:crypto'
import type { PoolKeys } from 'hedgeyard'
import {
  type Connection,
  createConnection,
  type DispatchCallSettings,
  type DispatchItem,
  dispatchArgs,
  LUA_SCRIPTS,
} from 'hedgeyard/internal'
import { DISPATCH_FLOOR_LUA } from './dispatch-floor.js'

/** One embedded script of the library, as its build generated it. */
export interface LibraryScript {
  lua: string
  /** SHA1 of the script text: the name `SCRIPT LOAD` gives it, recorded with every result. */
  sha1: string
}

/**
 * The library's encoder of a dispatch call, flattened as a script call takes it: the number of
 * keys, the KEYS, then ARGV, as its DispatchBatcher sends them.
 */
export type DispatchCallArgs = (
  keys: PoolKeys,
  settings: DispatchCallSettings,
  items: readonly DispatchItem[],
) => (string | number)[]

/** The scripts the benchmarks call, and how the library encodes a dispatch call. */
export interface LibraryScripts {
  dispatch: LibraryScript
  register: LibraryScript
  dispatchCallArgs: DispatchCallArgs
}

/**
 * A connection made by the library's own factory (the scripts defined, EVALSHA reloaded after
 * NOSCRIPT), with suite d's floor (dispatch-floor.ts) defined too; it takes the dispatch
 * script's arguments.
 */
export type BenchConnection = Connection & {
  dispatchFloor(...numKeysKeysAndArgs: (string | number)[]): Promise<unknown>
}

function script(name: keyof typeof LUA_SCRIPTS): LibraryScript {
  const lua = LUA_SCRIPTS[name].lua
  return { lua, sha1: createHash('sha1').update(lua).digest('hex') }
}

/**
 * The scripts exactly as the built library embeds them (`LUA_SCRIPTS` of `hedgeyard/internal`),
 * and the encoder of its dispatch calls: the benchmark measures what ships, called with the
 * arguments the library sends.
 */
export async function loadLibraryScripts(): Promise<LibraryScripts> {
  return {
    dispatch: script('dispatch'),
    register: script('register'),
    dispatchCallArgs: (keys, settings, items) => {
      const call = dispatchArgs(keys, settings, items)
      return [call.keys.length, ...call.keys, ...call.args]
    },
  }
}

/** A command connection made as the library makes its own, with the floor script defined too. */
export async function connectWithScripts(url: string, _scripts: LibraryScripts): Promise<BenchConnection> {
  const conn = createConnection(url, 'command', 'hy:bench') as BenchConnection
  conn.defineCommand('dispatchFloor', { lua: DISPATCH_FLOOR_LUA })
  await conn.connect()
  return conn
}
