import type { Command } from 'commander'
import { isHedgeyardError, openCellsView, openPoolView, type PoolSnapshot } from 'hedgeyard'
import {
  type CellsOption,
  type CommonOptions,
  intOption,
  withCellsOption,
  withCommonOptions,
} from '../options.js'
import { fail } from '../output.js'
import { renderFrame, SORT_KEYS, type SortKey } from '../top/render.js'

interface TopOptions extends CommonOptions, CellsOption {
  intervalMs: number
  once?: boolean
  sort: string
}

/** Defaults of `hedgeyard top`. */
export const TOP_DEFAULTS = Object.freeze({
  intervalMs: 1_000,
  /** A faster refresh would cost Redis a snapshot of the pool more often than a person can read. */
  minIntervalMs: 100,
  /** Width of a frame printed where stdout is not a terminal (and COLUMNS is not set). */
  columns: 80,
})

// Escape sequences: the alternate screen (the shell's screen comes back on exit), the cursor, and
// line wrapping (off: a line too long for the terminal is cut, never wrapped onto the next row).
const ENTER = '\x1b[?1049h\x1b[?25l\x1b[?7l'
const LEAVE = '\x1b[?7h\x1b[?25h\x1b[?1049l'
const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGTERM: 143 }

/**
 * `hedgeyard top`: a live view of a pool in the terminal, read from Redis over one connection and
 * redrawn every second; one frame and exit with `--once` or where stdout is not a terminal.
 */
export function topCommand(program: Command): void {
  withCellsOption(
    withCommonOptions(
      program
        .command('top')
        .description(
          'live view of a pool in the terminal: workers by load, jobs/s, errors, dead letters, latencies',
        ),
    ),
    'show every cell of the pool as one pool, each worker named with its cell (2/<worker>)',
  )
    .option(
      '--interval-ms <ms>',
      `refresh every this many ms (at least ${TOP_DEFAULTS.minIntervalMs})`,
      intOption('--interval-ms'),
      TOP_DEFAULTS.intervalMs,
    )
    .option('--once', 'print one frame and exit (what top does when stdout is not a terminal)')
    .option('--sort <key>', 'order of the workers: load, name or errors (keys l, n, e while it runs)', 'load')
    .action(async (opts: TopOptions) => {
      if (opts.intervalMs < TOP_DEFAULTS.minIntervalMs) {
        fail(
          'INVALID_ARGUMENT',
          `--interval-ms must be at least ${TOP_DEFAULTS.minIntervalMs} (got ${opts.intervalMs})`,
        )
      }
      const sort = Object.values(SORT_KEYS).find((key) => key === opts.sort)
      if (sort === undefined)
        fail('INVALID_ARGUMENT', `--sort must be load, name or errors (got '${opts.sort}')`)
      const ref = { redis: opts.redis, pool: opts.pool, prefix: opts.prefix }
      const view =
        opts.cells === undefined
          ? await openPoolView(ref, 'top')
          : await openCellsView({ ...ref, cells: opts.cells }, 'top')
      let first: PoolSnapshot
      try {
        first = await view.snapshot()
      } catch (err) {
        view.close()
        throw err
      }
      if (opts.once || !process.stdout.isTTY) {
        view.close()
        const columns = process.stdout.isTTY
          ? process.stdout.columns
          : Number(process.env.COLUMNS) || TOP_DEFAULTS.columns
        process.stdout.write(`${renderFrame({ snapshot: first, sort, columns }).join('\n')}\n`)
        return
      }
      runLive(view, first, sort, opts.intervalMs)
    })
}

/** Redraws the pool every `intervalMs` until `q`, Ctrl-C or a signal; the terminal is restored on exit. */
function runLive(
  view: Awaited<ReturnType<typeof openPoolView>>,
  first: PoolSnapshot,
  initialSort: SortKey,
  intervalMs: number,
): void {
  const out = process.stdout
  const stdin = process.stdin
  const hasKeys = stdin.isTTY === true
  let sort = initialSort
  let current = first
  let previous: PoolSnapshot | undefined
  let error: string | undefined
  let timer: NodeJS.Timeout | undefined
  let isStopped = false

  const draw = () => {
    const columns = out.columns
    const lines = renderFrame({ snapshot: current, previous, sort, columns, rows: out.rows, hasKeys, error })
    // Erase the rest of each line, except a full one: there the cursor waits on its last cell, which
    // the erase would clear.
    const text = lines.map((l) => (l.length < columns ? `${l}\x1b[K` : l)).join('\r\n')
    out.write(`\x1b[H${text}\x1b[J`)
  }
  const restore = () => {
    if (isStopped) return
    isStopped = true
    clearTimeout(timer)
    if (hasKeys) {
      stdin.setRawMode(false)
      stdin.pause()
    }
    out.write(LEAVE)
    view.close()
  }
  const quit = (code: number) => {
    restore()
    process.exit(code)
  }
  const tick = async () => {
    try {
      const next = await view.snapshot()
      previous = current
      current = next
      error = undefined
    } catch (err) {
      // Shown above the last reading, and tried again: Redis may come back.
      error = isHedgeyardError(err) ? `${err.code}: ${err.message}` : String(err)
    }
    if (isStopped) return
    draw()
    timer = setTimeout(tick, intervalMs)
  }

  // Whatever ends the process, the terminal gets its screen, cursor and line mode back.
  process.on('exit', restore)
  process.on('SIGINT', () => quit(0))
  for (const [signal, code] of Object.entries(SIGNAL_EXIT_CODES)) process.on(signal, () => quit(code))
  out.on('resize', draw)
  if (hasKeys) {
    stdin.setRawMode(true)
    stdin.setEncoding('utf8')
    stdin.on('data', (chunk: string) => {
      for (const ch of chunk) {
        // Ctrl-C and Ctrl-D: raw mode delivers them as characters instead of signals.
        if (ch === 'q' || ch === 'Q' || ch === '\x03' || ch === '\x04') quit(0)
        const next = SORT_KEYS[ch.toLowerCase()]
        if (next !== undefined && next !== sort) {
          sort = next
          draw()
        }
      }
    })
    stdin.resume()
  }
  out.write(ENTER)
  draw()
  timer = setTimeout(tick, intervalMs)
}
