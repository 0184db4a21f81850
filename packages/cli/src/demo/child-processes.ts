import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

/** A process the demo started, with the last lines it printed. */
export interface DemoChild {
  name: string
  process: ChildProcess
  /** Its last lines of output, for an error message. */
  tail(): string
}

const TAIL_LINES = 15

/**
 * The processes of a demo run: each `hedgeyard` command it starts, in a process group of its own
 * (so a Ctrl-C on the terminal reaches the demo alone, which then stops them in order: gateways,
 * workers, the simulator, Redis), and none left behind.
 */
export class ChildProcesses {
  readonly #children: DemoChild[] = []
  readonly #cliPath: string
  #isStopping = false
  #isClosed = false

  constructor(cliPath: string) {
    this.#cliPath = cliPath
  }

  /**
   * Starts `hedgeyard <args>` and waits for the first JSON log line on which `ready` returns a
   * value (`"url"`, say), which it resolves with.
   * @throws Error with the process's output when it exits first, or when `timeoutMs` passes; at
   * once after `stopAll` (a Ctrl-C while the demo was starting).
   */
  start<T>(
    name: string,
    args: string[],
    env: Record<string, string>,
    ready: (line: Record<string, unknown>) => T | undefined,
    timeoutMs = 30_000,
  ): Promise<{ child: DemoChild; value: T }> {
    if (this.#isClosed) return Promise.reject(new Error(`not starting ${name}: the demo is stopping`))
    const proc = spawn(process.execPath, [this.#cliPath, ...args], {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    })
    const lines: string[] = []
    const child: DemoChild = { name, process: proc, tail: () => lines.join('\n') }
    this.#children.push(child)
    return new Promise((resolve, reject) => {
      let isReady = false
      const timer = setTimeout(
        () => reject(new Error(`${name} was not ready within ${timeoutMs} ms:\n${child.tail()}`)),
        timeoutMs,
      )
      const onLine = (line: string) => {
        lines.push(line)
        if (lines.length > TAIL_LINES) lines.shift()
        if (isReady || !line.startsWith('{')) return
        let parsed: Record<string, unknown>
        try {
          parsed = JSON.parse(line) as Record<string, unknown>
        } catch {
          return
        }
        const value = ready(parsed)
        if (value === undefined) return
        isReady = true
        clearTimeout(timer)
        resolve({ child, value })
      }
      createInterface({ input: proc.stdout as NodeJS.ReadableStream }).on('line', onLine)
      createInterface({ input: proc.stderr as NodeJS.ReadableStream }).on('line', onLine)
      proc.once('error', (err) => {
        clearTimeout(timer)
        reject(new Error(`cannot start ${name}: ${err.message}`))
      })
      proc.once('exit', (code, signal) => {
        if (!isReady) {
          clearTimeout(timer)
          reject(
            new Error(`${name} exited (${signal ?? `code ${code}`}) before it was ready:\n${child.tail()}`),
          )
        } else if (!this.#isStopping) {
          process.stderr.write(
            `${name} exited unexpectedly (${signal ?? `code ${code}`}):\n${child.tail()}\n`,
          )
        }
      })
    })
  }

  /** The processes started under `name`'s prefix (`worker`, `gateway`), in the order started. */
  named(prefix: string): DemoChild[] {
    return this.#children.filter((c) => c.name.startsWith(prefix))
  }

  /**
   * Stops `children` with SIGTERM (a worker drains, a gateway finishes its requests) and waits for
   * them; one still running after `timeoutMs` is killed.
   */
  async stop(children: DemoChild[], timeoutMs = 15_000): Promise<void> {
    this.#isStopping = true
    await Promise.all(children.map((c) => stopOne(c.process, timeoutMs)))
  }

  /** Stops every process still running: the groups named in `order` one after the other, then the rest. */
  async stopAll(order: string[], timeoutMs = 15_000): Promise<void> {
    this.#isStopping = true
    this.#isClosed = true
    for (const prefix of order) await this.stop(this.named(prefix), timeoutMs)
    await this.stop(this.#children, timeoutMs)
  }

  /** Kills every process still running at once: for a second Ctrl-C. */
  killAll(): void {
    this.#isStopping = true
    this.#isClosed = true
    for (const c of this.#children) if (isRunning(c.process)) c.process.kill('SIGKILL')
  }
}

function isRunning(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null
}

function stopOne(proc: ChildProcess, timeoutMs: number): Promise<void> {
  if (!isRunning(proc)) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => proc.kill('SIGKILL'), timeoutMs)
    proc.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    proc.kill('SIGTERM')
  })
}
