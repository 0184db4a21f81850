/** Hand-written SVG charts for docs/bench: bars with min-max whiskers, stacked bars, latency CDFs. */

/** A series: its name in the legend and its colour. */
export interface Series {
  name: string
  color: string
}

/** One bar: a median and the range of the runs. */
export interface Bar {
  series: string
  value: number
  min?: number
  max?: number
}

export const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#7f7f7f'] as const

const W = 720
const H = 400
const M = { top: 48, right: 24, bottom: 64, left: 72 }
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"'

function esc(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function num(x: number): string {
  return (Math.round(x * 10) / 10).toString()
}

/** A "nice" upper bound and tick step for an axis from 0 to `max`. */
function niceAxis(max: number, ticks = 5): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 }
  const raw = max / ticks
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag
  return { top: Math.ceil(max / step) * step, step }
}

function format(value: number): string {
  if (value >= 10_000) return `${Math.round(value / 1_000)}k`
  if (value >= 1_000) return `${(value / 1_000).toFixed(1)}k`
  if (value >= 100) return value.toFixed(0)
  if (value >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

function frame(title: string, body: string[], legend: readonly Series[], note?: string): string {
  let x = M.left
  const items = legend.map((s) => {
    const at = x
    x += 40 + s.name.length * 7
    return (
      `<rect x="${at}" y="${H - 22}" width="12" height="12" fill="${s.color}"/>` +
      `<text x="${at + 18}" y="${H - 12}" font-size="12" ${FONT}>${esc(s.name)}</text>`
    )
  })
  const noteText = note
    ? `<text x="${W - M.right}" y="${M.top - 12}" font-size="11" text-anchor="end" fill="#555" ${FONT}>${esc(note)}</text>`
    : ''
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${M.left}" y="24" font-size="15" font-weight="600" ${FONT}>${esc(title)}</text>`,
    noteText,
    ...body,
    ...items,
    '</svg>',
    '',
  ].join('\n')
}

/** An axis tick: as many decimals as the step needs, thousands as `k`. */
function tick(value: number, step: number): string {
  if (value === 0) return '0'
  if (step >= 1_000) return `${Number((value / 1_000).toPrecision(4))}k`
  const decimals = step >= 1 ? 0 : Math.ceil(-Math.log10(step))
  return value.toFixed(decimals)
}

function yAxis(label: string, top: number, step: number, toY: (v: number) => number): string[] {
  const out: string[] = []
  for (let i = 0; i * step <= top + step / 2; i++) {
    const v = i * step
    const y = num(toY(v))
    out.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${M.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle" ${FONT}>${tick(v, step)}</text>`,
    )
  }
  const mid = (M.top + H - M.bottom) / 2
  out.push(
    `<text x="16" y="${mid}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${mid})" ${FONT}>${esc(label)}</text>`,
  )
  return out
}

/** Grouped bars with min-max whiskers and the median written above each bar. */
export function barChart(o: {
  title: string
  yLabel: string
  series: readonly Series[]
  groups: readonly { label: string; bars: readonly Bar[] }[]
  note?: string
}): string {
  const maxValue = Math.max(...o.groups.flatMap((g) => g.bars.map((b) => Math.max(b.value, b.max ?? 0))))
  const { top, step } = niceAxis(maxValue * 1.08)
  const plotH = H - M.top - M.bottom
  const toY = (v: number) => H - M.bottom - (v / top) * plotH
  const groupW = (W - M.left - M.right) / o.groups.length
  const body = yAxis(o.yLabel, top, step, toY)
  o.groups.forEach((g, gi) => {
    const barW = Math.min(70, (groupW * 0.7) / Math.max(1, g.bars.length))
    const x0 = M.left + gi * groupW + (groupW - barW * g.bars.length) / 2
    g.bars.forEach((b, bi) => {
      const color = o.series.find((s) => s.name === b.series)?.color ?? '#888'
      const x = x0 + bi * barW
      const y = toY(b.value)
      body.push(
        `<rect x="${num(x + 2)}" y="${num(y)}" width="${num(barW - 4)}" height="${num(H - M.bottom - y)}" fill="${color}"/>`,
      )
      if (b.min !== undefined && b.max !== undefined) {
        const cx = num(x + barW / 2)
        body.push(
          `<line x1="${cx}" x2="${cx}" y1="${num(toY(b.min))}" y2="${num(toY(b.max))}" stroke="#222"/>`,
          `<line x1="${num(x + barW / 2 - 5)}" x2="${num(x + barW / 2 + 5)}" y1="${num(toY(b.min))}" y2="${num(toY(b.min))}" stroke="#222"/>`,
          `<line x1="${num(x + barW / 2 - 5)}" x2="${num(x + barW / 2 + 5)}" y1="${num(toY(b.max))}" y2="${num(toY(b.max))}" stroke="#222"/>`,
        )
      }
      const labelY = Math.min(y, b.max === undefined ? y : toY(b.max)) - 5
      body.push(
        `<text x="${num(x + barW / 2)}" y="${num(labelY)}" font-size="11" text-anchor="middle" ${FONT}>${format(b.value)}</text>`,
      )
    })
    body.push(
      `<text x="${num(M.left + gi * groupW + groupW / 2)}" y="${H - M.bottom + 18}" font-size="12" text-anchor="middle" ${FONT}>${esc(g.label)}</text>`,
    )
  })
  return frame(o.title, body, o.series, o.note)
}

/** Stacked bars: each bar is a sum of parts, one colour per part. */
export function stackedBarChart(o: {
  title: string
  yLabel: string
  parts: readonly Series[]
  bars: readonly { label: string; values: readonly number[] }[]
  note?: string
}): string {
  const totals = o.bars.map((b) => b.values.reduce((s, v) => s + v, 0))
  const { top, step } = niceAxis(Math.max(...totals) * 1.08)
  const plotH = H - M.top - M.bottom
  const toY = (v: number) => H - M.bottom - (v / top) * plotH
  const slotW = (W - M.left - M.right) / o.bars.length
  const barW = Math.min(80, slotW * 0.6)
  const body = yAxis(o.yLabel, top, step, toY)
  o.bars.forEach((b, i) => {
    const x = M.left + i * slotW + (slotW - barW) / 2
    let base = 0
    b.values.forEach((v, k) => {
      const y1 = toY(base + v)
      body.push(
        `<rect x="${num(x)}" y="${num(y1)}" width="${num(barW)}" height="${num(toY(base) - y1)}" fill="${o.parts[k]?.color ?? '#888'}"/>`,
      )
      base += v
    })
    body.push(
      `<text x="${num(x + barW / 2)}" y="${num(toY(base) - 5)}" font-size="11" text-anchor="middle" ${FONT}>${format(base)}</text>`,
      `<text x="${num(x + barW / 2)}" y="${H - M.bottom + 18}" font-size="11" text-anchor="middle" ${FONT}>${esc(b.label)}</text>`,
    )
  })
  return frame(o.title, body, o.parts, o.note)
}

/** Axis values 1, 2, 5 x 10^k (finer over a narrow range) from the largest at or below `min` to the smallest at or above `max`. */
function niceLogSteps(min: number, max: number): number[] {
  const all: number[] = []
  const mantissas = max / min < 30 ? [1, 1.5, 2, 3, 5, 7] : [1, 2, 5]
  for (let k = Math.floor(Math.log10(min)) - 1; k <= Math.ceil(Math.log10(max)) + 1; k++) {
    for (const m of mantissas) all.push(m * 10 ** k)
  }
  const start = all.filter((v) => v <= min * 1.0001).at(-1) ?? (all[0] as number)
  const end = all.find((v) => v >= max * 0.9999) ?? (all[all.length - 1] as number)
  return all.filter((v) => v >= start && v <= end)
}

/**
 * Latency CDFs: x is latency in ms on a log scale, y the fraction of requests on a "nines" scale
 * (0, 0.9, 0.99, 0.999), so the tail shows. Points are [fraction, latency us].
 */
export function cdfChart(o: {
  title: string
  series: readonly (Series & { points: readonly [number, number][] })[]
  marksMs?: readonly { ms: number; label: string }[]
  note?: string
}): string {
  const all = o.series.flatMap((s) => s.points.map(([, us]) => us / 1_000)).filter((v) => v > 0)
  const steps = niceLogSteps(Math.min(...all), Math.max(...all))
  const lo = steps[0] as number
  const hi = steps[steps.length - 1] as number
  const plotW = W - M.left - M.right
  const plotH = H - M.top - M.bottom
  const maxNines = 3.3
  const toX = (ms: number) =>
    M.left + ((Math.log10(Math.max(ms, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotW
  const toY = (fraction: number) =>
    H - M.bottom - (Math.min(maxNines, -Math.log10(Math.max(1e-9, 1 - fraction))) / maxNines) * plotH
  const body: string[] = []
  for (const [fraction, label] of [
    [0, '0'],
    [0.5, '0.5'],
    [0.9, '0.9'],
    [0.99, '0.99'],
    [0.999, '0.999'],
  ] as const) {
    const y = num(toY(fraction))
    body.push(
      `<line x1="${M.left}" x2="${W - M.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${M.left - 6}" y="${y}" font-size="11" text-anchor="end" dominant-baseline="middle" ${FONT}>${label}</text>`,
    )
  }
  for (const v of steps) {
    const x = num(toX(v))
    body.push(
      `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#e5e5e5"/>`,
      `<text x="${x}" y="${H - M.bottom + 16}" font-size="11" text-anchor="middle" ${FONT}>${String(Number(v.toPrecision(3)))}</text>`,
    )
  }
  ;(o.marksMs ?? []).forEach((mark, i) => {
    const x = num(toX(mark.ms))
    body.push(
      `<line x1="${x}" x2="${x}" y1="${M.top}" y2="${H - M.bottom}" stroke="#555" stroke-dasharray="4 3"/>`,
      `<text x="${x}" y="${M.top + 12 + i * 14}" font-size="11" text-anchor="start" dx="4" fill="#555" ${FONT}>${esc(mark.label)}</text>`,
    )
  })
  const midY = (M.top + H - M.bottom) / 2
  body.push(
    `<text x="${(M.left + W - M.right) / 2}" y="${H - M.bottom + 34}" font-size="12" text-anchor="middle" ${FONT}>latency (ms, log scale)</text>`,
    `<text x="16" y="${midY}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${midY})" ${FONT}>fraction of requests at or below</text>`,
  )
  for (const s of o.series) {
    const d = s.points
      .map(([fraction, us], i) => `${i === 0 ? 'M' : 'L'}${num(toX(us / 1_000))},${num(toY(fraction))}`)
      .join(' ')
    body.push(`<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"/>`)
  }
  return frame(o.title, body, o.series, o.note)
}
