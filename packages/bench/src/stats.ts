/** Figures over repeated measurements, and the tables they are shown in. */

/** Median and range of repeated measurements. */
export interface Spread {
  median: number
  min: number
  max: number
}

/** Median (mean of the middle two for an even count), min and max. */
export function spread(values: readonly number[]): Spread {
  if (values.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN }
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  const median =
    sorted.length % 2 === 1
      ? (sorted[mid] as number)
      : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
  return { median, min: sorted[0] as number, max: sorted[sorted.length - 1] as number }
}

/** `12.3 (11.9-13.0)`, values scaled by `scale` first; `-` when there is no figure. */
export function fmt(s: Spread, digits: number, scale = 1): string {
  if (!Number.isFinite(s.median)) return '-'
  const v = (x: number) => (x * scale).toFixed(digits)
  return s.min === s.max ? v(s.median) : `${v(s.median)} (${v(s.min)}-${v(s.max)})`
}

/** Renders a Markdown table with its columns padded, so it reads in a terminal too. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`
  return [line(header), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...rows.map(line)].join('\n')
}

/** A small deterministic PRNG (mulberry32): every run draws the same numbers from the same seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296
  }
}
