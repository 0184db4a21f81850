import { isHedgeyardError } from 'hedgeyard'

/** Prints `error <CODE>: <message>` on stderr and exits non-zero. */
export function fail(code: string, message: string, exitCode = 1): never {
  process.stderr.write(`error ${code}: ${message}\n`)
  process.exit(exitCode)
}

/** Reports any error the way `fail` does: HedgeyardErrors keep their code. */
export function failWith(err: unknown): never {
  if (isHedgeyardError(err)) fail(err.code, err.message)
  fail('ERROR', err instanceof Error ? err.message : String(err))
}

/** Renders rows as an aligned text table. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const cells = [headers, ...rows.map((r) => r.map(String))]
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)))
  return cells
    .map((r) =>
      r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join('  '),
    )
    .join('\n')
}
