import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** A command running in a real terminal (a tmux pane), read as a person would see it. */
export interface Terminal {
  /** The text on the screen now, one line per row (trailing spaces trimmed by tmux). */
  screen(): Promise<string>
  /** Types keys, in tmux's names (`q`, `C-c`, `Enter`). */
  keys(...keys: string[]): Promise<void>
  /** The command's exit code once it has ended, undefined while it runs. */
  exitCode(): Promise<number | undefined>
  /** Ends the terminal and whatever still runs in it. */
  close(): Promise<void>
}

let counter = 0

/** Quotes an argument for the shell tmux runs the command with. */
function quote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`
}

/**
 * Runs `argv` in a `columns` x `rows` terminal of a tmux server of its own (its own socket, so
 * tests never see each other's panes); tmux's status line is off, so the command gets every row.
 * The exit code goes to a file: tmux's `pane_dead_status` stays empty for a Node process that
 * exits after a while, and an `echo` after it on the terminal can be lost (Node leaves the
 * terminal non-blocking).
 */
export async function openTerminal(
  argv: readonly string[],
  size: { columns: number; rows: number } = { columns: 80, rows: 24 },
): Promise<Terminal> {
  const dir = mkdtempSync(join(tmpdir(), 'hy-tmux-'))
  const conf = join(dir, 'tmux.conf')
  writeFileSync(conf, 'set -g remain-on-exit on\nset -g status off\n')
  const exitFile = join(dir, 'exit-code')
  const socket = `hy-test-${process.pid}-${++counter}`
  const tmux = (...args: string[]) => run('tmux', ['-L', socket, '-f', conf, ...args])
  await tmux(
    'new-session',
    '-d',
    '-s',
    'main',
    '-x',
    String(size.columns),
    '-y',
    String(size.rows),
    `${argv.map(quote).join(' ')}; echo $? > ${quote(exitFile)}`,
  )
  return {
    async screen() {
      return (await tmux('capture-pane', '-p', '-t', 'main')).stdout
    },
    async keys(...keys) {
      await tmux('send-keys', '-t', 'main', ...keys)
    },
    async exitCode() {
      const text = existsSync(exitFile) ? readFileSync(exitFile, 'utf8').trim() : ''
      return /^\d+$/.test(text) ? Number(text) : undefined
    },
    async close() {
      await tmux('kill-server').catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
