/**
 * How to call the dispatch script, read from its header contract (KEYS, ARGV, per-job fields).
 * The protocol is young and its argument list grows; reading the header keeps the benchmark in
 * step with the script it loads, and anything it cannot fill stops it with a message instead of
 * a run that measures error replies.
 */

/** What the benchmark knows how to pass before the jobs, matched on the start of each ARGV line. */
const ARG_PATTERNS = [
  ['base', /^base\b/],
  ['affinityTtl', /^affinity TTL/i],
  ['seed', /^random seed/i],
  ['producer', /^producer id/i],
  ['resultTtl', /^result TTL/i],
  ['count', /^number of jobs/i],
] as const

/** One of the leading arguments the benchmark can fill. */
export type ArgName = (typeof ARG_PATTERNS)[number][0]

/** Pool keys a script may take, by the last part of their name (`sy:{P}:load` -> `load`). */
export type KeyName = 'load' | 'ready' | 'alive' | 'dead'
const KEY_NAMES: readonly string[] = ['load', 'ready', 'alive', 'dead']

/** The dispatch call's shape: KEYS, the leading ARGV, then `count` jobs of `jobFields` each. */
export interface DispatchLayout {
  keys: KeyName[]
  args: ArgName[]
  jobFields: string[]
}

function fail(what: string): never {
  throw new Error(
    `cannot read the dispatch script's header contract: ${what}; update ARG_PATTERNS in ` +
      'packages/bench/src/dispatch-layout.ts or fieldValues() in dispatch-round.ts',
  )
}

/** Reads the layout from the header of `lua`; `knownJobFields` are the per-job fields it can fill. */
export function readDispatchLayout(lua: string, knownJobFields: readonly string[]): DispatchLayout {
  const header = lua.slice(0, lua.indexOf(']]'))

  const keys: KeyName[] = []
  for (const [, index, name] of header.matchAll(/KEYS\[(\d+)\]\s*->\s*\S*?:\{P\}:(\w+)/g)) {
    if (Number(index) !== keys.length + 1 || name === undefined || !KEY_NAMES.includes(name)) {
      fail(`KEYS[${index}] is '${name}'`)
    }
    keys.push(name as KeyName)
  }

  const args: ArgName[] = []
  for (const [, index, text] of header.matchAll(/^\s*ARGV\[(\d+)\]\s+(.*)$/gm)) {
    const arg = ARG_PATTERNS.find(([, pattern]) => pattern.test(text ?? ''))
    if (Number(index) !== args.length + 1 || arg === undefined) fail(`ARGV[${index}] is '${text}'`)
    args.push(arg[0])
  }
  if (args.at(-1) !== 'count') fail('the number of jobs is not the last leading argument')

  // "then 9 fields per job: jobId, session ('' for none), ..., race: '' (...) or 't' (...), copies: ..."
  // Each item of the list starts with a field's name; the prose around them is skipped.
  const list = /(\d+) fields per job:([\s\S]*?)\n\s*\n/.exec(header)
  const count = Number(list?.[1])
  const jobFields = (list?.[2] ?? '')
    .replace(/\([^)]*\)/g, '')
    .split(',')
    .map((item) => /^\s*([A-Za-z]\w*)\b/.exec(item)?.[1])
    .filter((name): name is string => name !== undefined)
    .slice(0, count)
  if (list === null || jobFields.length !== count) fail('the per-job fields')
  const unknown = jobFields.filter((f) => !knownJobFields.includes(f))
  if (unknown.length > 0) fail(`per-job fields ${unknown.join(', ')} are new to the benchmark`)
  return { keys, args, jobFields }
}
