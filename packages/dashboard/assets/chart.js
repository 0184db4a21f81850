// Line charts in inline SVG (a 600 x 170 viewBox), drawn from the snapshots the page has seen.

const HISTORY_MS = 5 * 60_000 // the longest span shown
const SVG = 'http://www.w3.org/2000/svg'

/** Points { at, ...values } of the last five minutes, oldest first. */
export const history = []

/** Adds a point and forgets those older than five minutes. */
export function record(point) {
  history.push(point)
  while (history.length > 0 && point.at - history[0].at > HISTORY_MS) history.shift()
}

// A line chart of `series` over the history (one minute at least, five at most), in an SVG with a
// 600 x 170 viewBox.
export function drawChart(svg, series, format) {
  const [W, H, L, B] = [600, 170, 56, 20]
  const now = history.length > 0 ? history[history.length - 1].at : 0
  const spanMs = Math.min(HISTORY_MS, Math.max(60_000, now - (history[0]?.at ?? now)))
  const values = series.flatMap((s) =>
    history.map((p) => p[s.key]).filter((v) => v !== undefined && v !== null),
  )
  const top = niceMax(Math.max(0, ...values))
  const x = (at) => L + ((W - L - 4) * (spanMs - (now - at))) / spanMs
  const y = (v) => 6 + (H - B - 6) * (1 - v / top)
  const el = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag)
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
    if (text !== undefined) node.textContent = text
    return node
  }
  const nodes = []
  for (const v of [0, top / 2, top]) {
    nodes.push(el('line', { class: 'grid', x1: L, x2: W - 4, y1: y(v), y2: y(v) }))
    nodes.push(el('text', { class: 'tick', x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, format(v)))
  }
  const ago =
    spanMs >= 120_000 ? `${Math.round(spanMs / 60_000)} min ago` : `${Math.round(spanMs / 1000)} s ago`
  nodes.push(el('text', { class: 'tick', x: L, y: H - 4 }, ago))
  nodes.push(el('text', { class: 'tick', x: W - 4, y: H - 4, 'text-anchor': 'end' }, 'now'))
  if (values.length === 0)
    nodes.push(
      el('text', { class: 'tick', x: (W + L) / 2, y: H / 2, 'text-anchor': 'middle' }, 'no data yet'),
    )
  for (const s of series) {
    let d = ''
    let isGap = true
    for (const p of history) {
      const v = p[s.key]
      if (v === undefined || v === null) isGap = true
      else {
        d += `${isGap ? 'M' : 'L'}${x(p.at).toFixed(1)},${y(v).toFixed(1)}`
        isGap = false
      }
    }
    nodes.push(el('path', { class: `line ${s.key}`, d }))
  }
  svg.replaceChildren(...nodes)
}

function niceMax(v) {
  if (v <= 0) return 1
  const step = 10 ** Math.floor(Math.log10(v))
  return [1, 2, 5, 10].map((m) => m * step).find((m) => m >= v)
}
