/** One sample of the Prometheus text format: `name{label="value",...} value`. */
export interface PromSample {
  name: string
  labels: Record<string, string>
  value: number
}

/** A metric family: its `# TYPE`, `# HELP` and samples (a histogram's `_bucket`, `_sum`, `_count` included). */
export interface PromFamily {
  type: string
  help: string
  samples: PromSample[]
}

/**
 * Parses the Prometheus text exposition format (version 0.0.4) strictly enough for a test: every
 * sample belongs to a family declared by `# TYPE` before it, names and label names are valid, label
 * values are unescaped, and a malformed line throws naming it.
 */
export function parsePromText(text: string): Map<string, PromFamily> {
  const families = new Map<string, PromFamily>()
  const family = (name: string) => {
    let f = families.get(name)
    if (!f) {
      f = { type: '', help: '', samples: [] }
      families.set(name, f)
    }
    return f
  }
  for (const [i, line] of text.split('\n').entries()) {
    const fail = (why: string): never => {
      throw new Error(`line ${i + 1} ${why}: ${line}`)
    }
    if (line.trim() === '') continue
    const meta = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line)
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string]
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest))
          fail('has an unknown type')
        if (family(name).type !== '') fail('declares a type twice')
        family(name).type = rest
      } else {
        family(name).help = rest.replaceAll('\\n', '\n').replaceAll('\\\\', '\\')
      }
      continue
    }
    if (line.startsWith('#')) continue
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line)
    if (!sample) fail('is not a sample')
    const [, name, labelText, valueText] = sample as unknown as [string, string, string | undefined, string]
    // As Prometheus reads it (Go's ParseFloat): NaN and Inf in any case (prom-client writes `Nan`).
    const special = /^([+-]?)(inf|nan)$/i.exec(valueText)
    const value = special
      ? special[2]?.toLowerCase() === 'nan'
        ? Number.NaN
        : (special[1] === '-' ? -1 : 1) * Number.POSITIVE_INFINITY
      : Number(valueText)
    if (Number.isNaN(value) && !special) fail('has a value that is not a number')
    const labels = parseLabels(labelText ?? '', fail)
    const owner = [name, name.replace(/_(bucket|sum|count|total|created)$/, '')].find(
      (n) => families.get(n)?.type,
    )
    if (owner === undefined) fail('has no # TYPE before it')
    family(owner as string).samples.push({ name, labels, value })
  }
  return families
}

function parseLabels(text: string, fail: (why: string) => never): Record<string, string> {
  const labels: Record<string, string> = {}
  let rest = text
  while (rest.length > 0) {
    const m = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/.exec(rest)
    if (!m) fail('has malformed labels')
    const [whole, name, raw] = m as unknown as [string, string, string]
    if (name in labels) fail(`repeats the label ${name}`)
    labels[name] = raw.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c))
    rest = rest.slice(whole.length)
  }
  return labels
}

/** Every sample named `name` (a histogram's `_bucket` too) whose labels include `labels`. */
export function samplesOf(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): PromSample[] {
  return [...families.values()]
    .flatMap((f) => f.samples)
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
}

/** The sum of the values of those samples. */
export function sumOf(
  families: Map<string, PromFamily>,
  name: string,
  labels: Record<string, string> = {},
): number {
  return samplesOf(families, name, labels).reduce((n, s) => n + s.value, 0)
}
