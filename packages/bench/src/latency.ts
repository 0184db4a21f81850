/** Percentiles and CDF points of latency samples (us). */

/** What the doc and the JSON keep of one set of latencies. */
export interface LatencySummary {
  count: number
  meanUs: number
  p50Us: number
  p90Us: number
  p99Us: number
  maxUs: number
}

/** Nearest-rank percentile of sorted values (`p` in 0..1). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[rank] as number
}

export function summarize(values: readonly number[]): LatencySummary {
  const sorted = [...values].sort((a, b) => a - b)
  const sum = sorted.reduce((s, v) => s + v, 0)
  return {
    count: sorted.length,
    meanUs: sorted.length > 0 ? sum / sorted.length : Number.NaN,
    p50Us: percentile(sorted, 0.5),
    p90Us: percentile(sorted, 0.9),
    p99Us: percentile(sorted, 0.99),
    maxUs: sorted.length > 0 ? (sorted[sorted.length - 1] as number) : Number.NaN,
  }
}

/**
 * Points of the CDF, [fraction, latency us], spaced evenly on a "nines" scale (fraction 0 to
 * 0.999, then the maximum), so the tail is as visible as the middle.
 */
export function cdfPoints(values: readonly number[], steps = 120): [number, number][] {
  const sorted = [...values].sort((a, b) => a - b)
  if (sorted.length === 0) return []
  const out: [number, number][] = []
  const maxNines = Math.min(3, Math.log10(sorted.length))
  for (let k = 0; k <= steps; k++) {
    const fraction = 1 - 10 ** (-(maxNines * k) / steps)
    out.push([round(fraction, 5), round(percentile(sorted, fraction), 1)])
  }
  out.push([1, round(sorted[sorted.length - 1] as number, 1)])
  return out
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
