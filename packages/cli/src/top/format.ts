import type { Limiter } from 'hedgeyard'

/**
 * Text from Redis made safe to print on a terminal: control characters (an escape sequence in a
 * worker id would redraw the screen) become `?`.
 */
export function printable(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, '?')
}

/** `text` cut or padded to exactly `width` characters; a cut one ends with `~`. */
export function fit(text: string, width: number, align: 'left' | 'right' = 'left'): string {
  if (width <= 0) return ''
  if (text.length > width) return width === 1 ? '~' : `${text.slice(0, width - 1)}~`
  return align === 'left' ? text.padEnd(width) : text.padStart(width)
}

/**
 * An id cut to `width` in its middle (`host-lo~-12`): worker ids share their start (the host) and
 * differ at their end (pid and number), so both ends stay visible.
 */
export function fitMiddle(text: string, width: number): string {
  if (text.length <= width) return text.padEnd(width)
  if (width < 5) return fit(text, width)
  const tail = Math.floor((width - 1) / 2)
  return `${text.slice(0, width - 1 - tail)}~${text.slice(text.length - tail)}`
}

/** A finite, non-negative number read from Redis, or 0 (a hostile or missing field counts as nothing). */
export function count(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : 0
}

/**
 * A load bar of `width` characters, brackets included: `#` for jobs running, `=` for jobs queued,
 * `.` for the capacity left, scaled to the capacity (or to what the worker holds when that is more).
 */
export function loadBar(inflight: number, queued: number, capacity: number, width: number): string {
  const inner = Math.max(1, width - 2)
  const scale = Math.max(capacity, inflight + queued, 1)
  // A worker holding anything shows at least one mark for it, so a busy worker is never drawn idle.
  const cells = (n: number) => (n <= 0 ? 0 : Math.max(1, Math.round((n / scale) * inner)))
  const run = Math.min(inner, cells(inflight))
  const wait = Math.min(inner - run, cells(queued))
  const free = capacity > 0 ? inner - run - wait : 0
  return `[${'#'.repeat(run)}${'='.repeat(wait)}${'.'.repeat(free)}${' '.repeat(inner - run - wait - free)}]`
}

/** Milliseconds as a short duration: `850ms`, `12.3s`, `4m05s`, `2h10m`. */
export function duration(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)}ms`
  if (ms < 60_000) return `${(ms / 1_000).toFixed(ms < 10_000 ? 1 : 0)}s`
  const s = Math.round(ms / 1_000)
  if (s < 3_600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  return `${Math.floor(s / 3_600)}h${String(Math.floor((s % 3_600) / 60)).padStart(2, '0')}m`
}

/** A period as the CLI's `limits` command writes it: `s`, `min`, `h`, `10s`, `500ms`. */
function period(ms: number): string {
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['min', 60_000],
    ['s', 1_000],
  ] as const) {
    if (ms > 0 && ms % size === 0) return ms === size ? unit : `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/** A limiter as `100/s burst 10`. */
export function limiter(l: Limiter): string {
  return `${count(l.limit)}/${period(count(l.periodMs))} burst ${count(l.burst ?? 1)}`
}

/** A rate with about three significant digits: `0.25`, `12.5`, `1234`. */
export function rate(perSecond: number): string {
  if (perSecond >= 100) return String(Math.round(perSecond))
  if (perSecond >= 10) return perSecond.toFixed(1)
  return perSecond.toFixed(2)
}
