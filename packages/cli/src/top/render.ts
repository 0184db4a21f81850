import type { PoolSnapshot, WorkerMetrics } from 'hedgeyard'
import { count, duration, fit, fitMiddle, limiter, loadBar, printable, rate } from './format.js'
import { poolRates } from './rates.js'

/** How `top` orders its workers. */
export type SortKey = 'load' | 'name' | 'errors'

/** The sort each key selects. */
export const SORT_KEYS: Readonly<Record<string, SortKey>> = Object.freeze({
  l: 'load',
  n: 'name',
  e: 'errors',
})

/** One screen of `top`. */
export interface Frame {
  snapshot: PoolSnapshot
  /** The snapshot before it, for jobs/s and the error rate. */
  previous?: PoolSnapshot | undefined
  sort: SortKey
  /** Width of the terminal: no line is longer. */
  columns: number
  /** Height of the terminal; undefined prints every worker (not a terminal). */
  rows?: number | undefined
  /** Whether to show the key help line (a live view). */
  hasKeys?: boolean
  /** Why the last refresh failed: shown above the workers of the last snapshot that worked. */
  error?: string | undefined
}

/** The narrowest layout; a narrower terminal gets lines cut to its width. */
const MIN_COLUMNS = 40
/** Below this width the DONE and ERR columns are left out. */
const COUNTS_MIN_COLUMNS = 70
const STATE_WIDTH = 12
const NUMS_WIDTH = 12
const DONE_WIDTH = 8
const ERR_WIDTH = 6

/** The lines of one screen of `top`, each at most `columns` characters. */
export function renderFrame(frame: Frame): string[] {
  const { snapshot } = frame
  const columns = Math.max(1, Math.floor(frame.columns))
  const header = headerLines(frame)
  const footer = frame.hasKeys
    ? [`sort: ${frame.sort}   keys: l load  n name  e errors  q quit`]
    : ([] as string[])
  const layout = columnWidths(Math.max(columns, MIN_COLUMNS))
  const workers = sortWorkers(snapshot.workers, frame.sort)
  const body: string[] = []
  if (workers.length === 0) {
    body.push(`no workers registered in pool '${printable(snapshot.pool)}'`)
  } else {
    body.push(columnHeader(layout))
    const room =
      frame.rows === undefined ? Number.POSITIVE_INFINITY : frame.rows - header.length - footer.length - 1
    const shown = workers.length <= room ? workers.length : Math.max(0, room - 1)
    for (const w of workers.slice(0, shown)) body.push(workerLine(w, layout))
    if (shown < workers.length) body.push(`+${workers.length - shown} more`)
  }
  // On a terminal the key help stays on its last row.
  const gap =
    frame.rows === undefined ? 0 : Math.max(0, frame.rows - header.length - body.length - footer.length)
  return [...header, ...body, ...Array<string>(footer.length > 0 ? gap : 0).fill(''), ...footer].map((line) =>
    clip(line, columns),
  )
}

/** Workers in the order of `sort`, ties by id. */
export function sortWorkers(workers: readonly WorkerMetrics[], sort: SortKey): WorkerMetrics[] {
  const byName = (a: WorkerMetrics, b: WorkerMetrics) =>
    a.workerId < b.workerId ? -1 : a.workerId > b.workerId ? 1 : 0
  const key = sort === 'load' ? loadOf : sort === 'errors' ? (w: WorkerMetrics) => count(w.errors) : undefined
  return [...workers].sort((a, b) => (key ? key(b) - key(a) : 0) || byName(a, b))
}

/** What a worker holds (running and queued) relative to its capacity; a full worker is 1. */
export function loadOf(w: WorkerMetrics): number {
  const held = count(w.inflight) + count(w.queueLen)
  const capacity = count(w.capacity)
  if (capacity > 0) return held / capacity
  return held > 0 ? Number.POSITIVE_INFINITY : 0
}

/** A worker's state as `top` shows it: the most important thing first. */
export function stateText(w: WorkerMetrics): string {
  if (!w.alive) return 'DEAD'
  if (w.breaker === 'open') return `breaker ${Math.ceil(count(w.breakerMs) / 1_000)}s`
  if (w.state === 'draining') return 'draining'
  if (w.state === 'cooling') return `cooling ${Math.ceil(count(w.coolingMs) / 1_000)}s`
  if (w.breaker === 'half-open') return 'half-open'
  return printable(String(w.state))
}

function headerLines(frame: Frame): string[] {
  const { snapshot } = frame
  const alive = snapshot.workers.filter((w) => w.alive).length
  const rates = poolRates(frame.previous, snapshot)
  const time = Number.isFinite(snapshot.at) ? new Date(snapshot.at).toISOString().slice(11, 19) : '--:--:--'
  const lines = [
    `hedgeyard top   pool ${printable(snapshot.pool)}   ${time} UTC`,
    [
      `workers ${alive}/${snapshot.workers.length} alive`,
      `jobs/s ${rates ? rate(rates.jobsPerSecond) : '-'}`,
      `errors ${rates?.errorRatio === undefined ? '-' : `${(rates.errorRatio * 100).toFixed(1)}%`}`,
      `dead letters ${count(snapshot.deadLetters)}`,
    ].join('   '),
    producerLine(snapshot),
  ]
  const { rate: r, cost } = snapshot.limits
  if (r || cost) {
    lines.push(
      `quotas   ${[r ? `rate ${limiter(r)}` : '', cost ? `cost ${limiter(cost)}` : ''].filter(Boolean).join('   ')}`,
    )
  }
  if (frame.error) lines.push(`! ${printable(frame.error)} (showing the last reading)`)
  return lines
}

/** The producers' latencies: the worst p50 and p99 among those reporting. */
function producerLine(snapshot: PoolSnapshot): string {
  const n = snapshot.producers.length
  if (n === 0) return 'producers: none reporting'
  const worst = (pick: (p: (typeof snapshot.producers)[number]) => number | undefined) => {
    const values = snapshot.producers
      .map(pick)
      .filter((v): v is number => v !== undefined && Number.isFinite(v))
    return values.length > 0 ? duration(Math.max(...values)) : '-'
  }
  const p50 = worst((p) => p.latencyP50Ms)
  const p99 = worst((p) => p.latencyP99Ms)
  return `producers ${n}   p50 ${p50}   p99 ${p99}${n > 1 ? '   (worst producer)' : ''}`
}

interface Layout {
  id: number
  bar: number
  hasCounts: boolean
}

function columnWidths(columns: number): Layout {
  const hasCounts = columns >= COUNTS_MIN_COLUMNS
  // The fixed columns and the spaces between all six (or four) columns.
  const fixed = STATE_WIDTH + NUMS_WIDTH + (hasCounts ? DONE_WIDTH + ERR_WIDTH + 5 : 3)
  const rest = columns - fixed
  const id = Math.min(32, Math.max(8, Math.floor(rest / 2)))
  return { id, bar: Math.max(4, rest - id), hasCounts }
}

function columnHeader(layout: Layout): string {
  return [
    fit('WORKER', layout.id),
    fit('STATE', STATE_WIDTH),
    fit('#run =queued .free', layout.bar),
    fit('RUN/Q/CAP', NUMS_WIDTH, 'right'),
    ...(layout.hasCounts ? [fit('DONE', DONE_WIDTH, 'right'), fit('ERR', ERR_WIDTH, 'right')] : []),
  ].join(' ')
}

function workerLine(w: WorkerMetrics, layout: Layout): string {
  const inflight = count(w.inflight)
  const queued = count(w.queueLen)
  const capacity = count(w.capacity)
  return [
    fitMiddle(printable(String(w.workerId)), layout.id),
    fit(stateText(w), STATE_WIDTH),
    loadBar(inflight, queued, capacity, layout.bar),
    fit(`${inflight}/${queued}/${capacity}`, NUMS_WIDTH, 'right'),
    ...(layout.hasCounts
      ? [
          fit(String(count(w.processed)), DONE_WIDTH, 'right'),
          fit(String(count(w.errors)), ERR_WIDTH, 'right'),
        ]
      : []),
  ].join(' ')
}

/** A line cut to the terminal's width (never wrapped), without trailing spaces. */
function clip(line: string, columns: number): string {
  const trimmed = line.trimEnd()
  return trimmed.length > columns ? fit(trimmed, columns) : trimmed
}
