import { type Connection, redisFailure } from '../../redis/connection.js'
import { HedgeyardError } from '../errors.js'
import type { ScriptName } from '../lua/scripts.generated.js'

/**
 * How a script takes its keys: `fixedKeys` KEYS every call passes, then, when `hasKeysPerItem`,
 * more for each worker or job of the call, as its header says (`KEYS[n..]`). A test checks each
 * script's header against this.
 */
export interface ScriptSpec {
  readonly name: ScriptName
  readonly fixedKeys: number
  readonly hasKeysPerItem: boolean
}

/**
 * Calls a script (EVALSHA, loaded again after NOSCRIPT) with its keys and arguments. A failure
 * comes back as a HedgeyardError classified by the reply's prefix, never as a raw ReplyError.
 */
export async function callScript(
  conn: Connection,
  spec: ScriptSpec,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  try {
    return await conn[spec.name](keys.length, ...keys, ...args)
  } catch (err) {
    throw redisFailure(err, spec.name)
  }
}

/** A reply that is not what the script's header promises: a script and its caller disagree. */
export function badReply(spec: ScriptSpec, what: string): HedgeyardError {
  return new HedgeyardError('PROTOCOL_ERROR', `${spec.name} replied ${what}`)
}

/** The reply as an array of `length` items (any length when undefined). */
export function replyArray(spec: ScriptSpec, reply: unknown, length?: number): unknown[] {
  if (!Array.isArray(reply) || (length !== undefined && reply.length !== length)) {
    throw badReply(spec, `${describeReply(reply)} where ${length ?? 'an'} array item(s) were expected`)
  }
  return reply
}

/** An integer reply (Redis integers arrive as numbers). */
export function replyInteger(spec: ScriptSpec, reply: unknown): number {
  if (typeof reply !== 'number' || !Number.isInteger(reply)) {
    throw badReply(spec, `${describeReply(reply)} where an integer was expected`)
  }
  return reply
}

/** One of the status strings the header lists. */
export function replyStatus<T extends string>(spec: ScriptSpec, reply: unknown, allowed: readonly T[]): T {
  if (typeof reply !== 'string' || !allowed.includes(reply as T)) {
    throw badReply(spec, `${describeReply(reply)} where one of ${allowed.join(', ')} was expected`)
  }
  return reply as T
}

function describeReply(reply: unknown): string {
  if (Array.isArray(reply)) return `an array of ${reply.length}`
  if (typeof reply === 'string') return JSON.stringify(reply.slice(0, 40))
  return String(reply)
}
