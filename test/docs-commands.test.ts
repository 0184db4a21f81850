/**
 * The shell sessions of README.md, docs/redis-keys.md (its cookbook) and docs/cells.md run against a real Redis,
 * so that the commands and outputs they show cannot drift from what the CLI does.
 *
 * Convention:
 * - A session is a fenced code block with lines `$ <command>`, each followed by the output the
 *   docs show for it (up to the next `$` line; blank lines around it do not count). A ```sh or
 *   ```bash block without `$` lines counts each line that runs `hedgeyard` as a command without
 *   shown output. Blocks whose commands never run `hedgeyard` (redis-cli sessions, npm) are
 *   other tools' examples and are not run.
 * - Each session runs on its own in one `bash`, in a scratch directory where `test/` is this
 *   repository's test folder (so `--handler test/fixtures/echo.js` works) and `hedgeyard` is the
 *   built CLI; `redis://127.0.0.1:6379` means the tests' Redis, and every `--pool <name>` gets a
 *   suffix of its own (taken out again before outputs are compared). Processes it starts in the
 *   background are killed when it ends.
 * - A command runs after the one before it has finished; one sent to the background (`&`) must
 *   send its output to a file, and after a `hedgeyard worker` the next command waits until that
 *   file has a line (the worker logs one when its workers are registered).
 * - Each command must exit 0, except a `hedgeyard` command whose output shown is
 *   `error <CODE>: ...`: it must fail with that code. Where the docs show output, the output must match in shape: a line of JSON
 *   has the same keys, nested alike, with values of the same types; an error line the same code;
 *   any other line the same text once numbers, ids, the host name and runs of spaces are
 *   normalised. A command that only reads (`inspect`, `result`, `dead list`, `limits show`,
 *   `grep`, `head`, `cat`) is run again for up to 10 s until its output matches, as a reader
 *   would look again after a moment.
 * - A session that needs what this test cannot give (the demo, a server that runs until stopped,
 *   another host) is left out by a line `<!-- docs-test: skip: <why> -->` right above its fence,
 *   which tells the reader of the doc why it is not checked.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { CLI, redisUrl } from '@hedgeyard/testing/helpers'
import { afterAll, describe, it } from 'vitest'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const DOCS = ['README.md', 'docs/redis-keys.md', 'docs/cells.md']
/** The Redis URL the docs use, replaced by the tests' own. */
const DOCS_REDIS_URL = 'redis://127.0.0.1:6379'
const READ_ONLY = /^(hedgeyard (inspect|result|dead list|limits show)|grep|head|cat|tail)\b/

interface Step {
  command: string
  /** The output the docs show (may be empty: then it is not checked). */
  shown: string[]
  line: number
}

interface Session {
  file: string
  line: number
  steps: Step[]
  skip?: string
}

/** The sessions of a Markdown file that run `hedgeyard`. */
function sessionsOf(file: string): Session[] {
  const lines = readFileSync(join(ROOT, file), 'utf8').split('\n')
  const sessions: Session[] = []
  for (let i = 0; i < lines.length; i++) {
    const fence = /^```(\w*)\s*$/.exec(lines[i] as string)
    if (!fence) continue
    const start = i
    const body: string[] = []
    for (i++; i < lines.length && !(lines[i] as string).startsWith('```'); i++) body.push(lines[i] as string)
    const steps: Step[] = []
    const hasPrompts = body.some((l) => l.startsWith('$ '))
    body.forEach((l, j) => {
      const line = start + 2 + j
      if (hasPrompts) {
        if (l.startsWith('$ ')) steps.push({ command: l.slice(2), shown: [], line })
        else steps.at(-1)?.shown.push(l)
      } else if (['sh', 'bash'].includes(fence[1] as string) && runsHedgeyard(l)) {
        steps.push({ command: l.replace(/\s+#.*$/, ''), shown: [], line })
      }
    })
    if (!steps.some((s) => runsHedgeyard(s.command))) continue
    for (const s of steps) {
      while (s.shown.length > 0 && s.shown.at(-1)?.trim() === '') s.shown.pop()
      while (s.shown.length > 0 && s.shown[0]?.trim() === '') s.shown.shift()
    }
    const marker = /^<!-- docs-test: skip: (.+) -->$/.exec(lines[start - 1] ?? '')
    sessions.push({ file, line: start + 1, steps, ...(marker ? { skip: marker[1] as string } : {}) })
  }
  return sessions
}

function runsHedgeyard(command: string): boolean {
  return /(^|[\s;&|(])hedgeyard\s/.test(command)
}

/** One bash that runs a session's commands in turn, keeping its state (variables, jobs). */
class Shell {
  readonly #child: ChildProcess
  #out = ''
  #err = ''
  #count = 0

  constructor(cwd: string, env: NodeJS.ProcessEnv) {
    this.#child = spawn('bash', ['--noprofile', '--norc'], { cwd, env, detached: true, stdio: 'pipe' })
    this.#child.stdout?.on('data', (d) => {
      this.#out += d
    })
    this.#child.stderr?.on('data', (d) => {
      this.#err += d
    })
  }

  /** Runs one command; resolves with its exit code and its output (stdout and stderr). */
  async run(command: string, timeoutMs = 60_000): Promise<{ code: number; output: string }> {
    const marker = `@@docs-test-${++this.#count}@@`
    const isBackground = /&\s*$/.test(command)
    const script = isBackground ? command : `{ ${command}\n} 2>&1`
    this.#child.stdin?.write(`${script}\nprintf '\\n${marker} %s\\n' $?\n`)
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const at = this.#out.indexOf(`\n${marker} `)
      if (at >= 0) {
        const end = this.#out.indexOf('\n', at + 1 + marker.length)
        if (end >= 0) {
          const code = Number(this.#out.slice(at + marker.length + 2, end))
          const output = this.#out.slice(0, at)
          this.#out = this.#out.slice(end + 1)
          return { code, output }
        }
      }
      if (this.#child.exitCode !== null) throw new Error(`bash exited: ${this.#err}`)
      if (Date.now() > deadline) throw new Error(`no end within ${timeoutMs} ms: ${this.#out}${this.#err}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }

  /** Kills the bash and everything it started. */
  close(): void {
    try {
      if (this.#child.pid !== undefined) process.kill(-this.#child.pid, 'SIGKILL')
    } catch {}
  }
}

const ULID_OR_TOKEN = /\b(?=[0-9A-Z]*[0-9])(?=[0-9A-Z]*[A-Z])[0-9A-Z]{6,}\b/g

/**
 * A line as the comparison sees it: numbers, ids, the host and spacing do not count. An id is a
 * number to it, for the random part of one can be all digits (a producer's `-02518960`).
 */
function normalise(line: string): string {
  return line
    .replaceAll(hostname(), 'vm')
    .replace(ULID_OR_TOKEN, '#')
    .replace(/\d+(\.\d+)?/g, '#')
    .replace(/\s+/g, ' ')
    .trim()
}

/** The shape of a JSON value: its keys, nested alike, and the types of its values. */
function shapeOf(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(shapeOf)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [k, shapeOf(v)]),
    )
  }
  return value === null ? 'null' : typeof value
}

function jsonOf(line: string): unknown {
  if (!/^[[{]/.test(line.trim())) return undefined
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

/** Why `actual` does not match what the docs show, or undefined when it does. */
function mismatch(shown: string[], actual: string[]): string | undefined {
  if (shown.length !== actual.length) return `${actual.length} lines where the docs show ${shown.length}`
  for (let i = 0; i < shown.length; i++) {
    const s = shown[i] as string
    const a = actual[i] as string
    const error = /^error ([A-Z_]+):/.exec(s)
    if (error) {
      if (!a.startsWith(`error ${error[1]}:`))
        return `line ${i + 1}: '${a}' where the docs show error ${error[1]}`
      continue
    }
    const json = jsonOf(s)
    if (json !== undefined) {
      const got = jsonOf(a)
      if (got === undefined) return `line ${i + 1}: '${a}' is not JSON`
      if (JSON.stringify(shapeOf(got)) !== JSON.stringify(shapeOf(json)))
        return `line ${i + 1}: JSON of shape ${JSON.stringify(shapeOf(got))}, the docs ${JSON.stringify(shapeOf(json))}`
      continue
    }
    if (normalise(a) !== normalise(s))
      return `line ${i + 1}: '${normalise(a)}' where the docs show '${normalise(s)}'`
  }
  return undefined
}

const scratchRoot = mkdtempSync(join(tmpdir(), 'hedgeyard-docs-'))
afterAll(() => rmSync(scratchRoot, { recursive: true, force: true }))

/** A scratch directory with `test/` and a `hedgeyard` on the PATH. */
function scratch(name: string): { cwd: string; env: NodeJS.ProcessEnv } {
  const cwd = join(scratchRoot, name)
  mkdirSync(join(cwd, 'bin'), { recursive: true })
  symlinkSync(join(ROOT, 'test'), join(cwd, 'test'))
  const bin = join(cwd, 'bin', 'hedgeyard')
  writeFileSync(bin, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} "$@"\n`)
  chmodSync(bin, 0o755)
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${join(cwd, 'bin')}:${process.env.PATH}`,
    HEDGEYARD_REDIS_URL: redisUrl(),
  }
  delete env.HEDGEYARD_LOG_LEVEL
  return { cwd, env }
}

async function runSession(session: Session, suffix: string): Promise<void> {
  const { cwd, env } = scratch(suffix)
  const shell = new Shell(cwd, env)
  try {
    for (const step of session.steps) {
      const where = `${session.file}:${step.line}: $ ${step.command}`
      const command = step.command
        .replaceAll(DOCS_REDIS_URL, redisUrl())
        .replace(
          /--pool(\s+|=)([\w.:-]+)/g,
          (_, sep: string, pool: string) => `--pool${sep}${pool}-${suffix}`,
        )
      const expectsError = runsHedgeyard(command)
        ? /^error ([A-Z_]+):/.exec(step.shown[0] ?? '')?.[1]
        : undefined
      const deadline = Date.now() + (READ_ONLY.test(command) ? 10_000 : 0)
      for (;;) {
        const { code, output } = await shell.run(command)
        const actual = output.replaceAll(`-${suffix}`, '').replace(/\n$/, '').split('\n')
        if (output === '') actual.pop()
        const problem =
          expectsError !== undefined
            ? code === 0
              ? 'exited 0 where the docs show an error'
              : mismatch(step.shown, actual)
            : code !== 0
              ? `exited ${code}:\n${output}`
              : step.shown.length > 0
                ? mismatch(step.shown, actual)
                : undefined
        if (problem === undefined) break
        if (Date.now() > deadline) throw new Error(`${where}\n${problem}\noutput:\n${actual.join('\n')}`)
        await new Promise((r) => setTimeout(r, 250))
      }
      if (/&\s*$/.test(command)) {
        const output = /\s>\s*([^\s&]+)/.exec(command)?.[1]
        if (output === undefined) {
          throw new Error(`${where}\na command sent to the background must send its output to a file`)
        }
        if (!/(^|\s)hedgeyard worker\s/.test(command)) continue
        const file = join(cwd, output)
        const until = Date.now() + 20_000
        while (!(existsSync(file) && readFileSync(file, 'utf8').includes('\n'))) {
          if (Date.now() > until) throw new Error(`${where}\n${output} has no line after 20 s`)
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    }
  } finally {
    shell.close()
  }
}

describe('the shell sessions of the docs', () => {
  let n = 0
  for (const file of DOCS) {
    for (const session of sessionsOf(file)) {
      const name = `${file}:${session.line} (${session.steps.length} commands)`
      // A session marked as not runnable here says why in the doc itself; it is not a test.
      if (session.skip !== undefined) continue
      const suffix = `docs${++n}-${process.pid}`
      it(name, () => runSession(session, suffix), 120_000)
    }
  }
})
