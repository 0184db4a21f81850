/**
 * The parent side of the parent-runner protocol (see runners/runner-io.ts): spawns a runner with
 * `process.execPath`, sends it commands on stdin and waits for its JSON lines on stdout.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { RunnerCommand } from './runners/runner-io.js'

/** The runner scripts in dist/runners/. */
export type RunnerName =
  | 'hedgeyard-worker'
  | 'hedgeyard-producer'
  | 'bullmq-worker'
  | 'bullmq-producer'
  | 'routing-producer'
  | 'plain-worker'
  | 'plain-producer'
  | 'local-producer'
  | 'hedging-worker'

/** A message from a runner: its `type` and whatever it carries. */
export type RunnerMessage = { type: string } & Record<string, unknown>

const live = new Set<ChildProcess>()
/** Extra Node options for every runner (main.ts's `--profile <dir>` adds `--cpu-prof`). */
const nodeOptions: string[] = []

/** Makes every runner spawned from now on write a V8 CPU profile into `dir`. */
export function profileRunnersInto(dir: string): void {
  nodeOptions.push('--cpu-prof', '--cpu-prof-dir', dir)
}

process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL')
})

/** A running runner process. */
export class RunnerProcess {
  readonly name: string
  readonly #child: ChildProcess
  readonly #inbox: RunnerMessage[] = []
  #waiter: { type: string; resolve: (m: RunnerMessage) => void; reject: (e: Error) => void } | undefined
  #failure: Error | undefined
  readonly #exited: Promise<void>

  private constructor(name: RunnerName, config: object) {
    this.name = name
    const script = fileURLToPath(new URL(`./runners/${name}.js`, import.meta.url))
    this.#child = spawn(process.execPath, [...nodeOptions, script, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    })
    live.add(this.#child)
    this.#exited = new Promise((resolve) => {
      this.#child.once('exit', (code, signal) => {
        live.delete(this.#child)
        if (code !== 0 && !this.#failure) {
          this.#fail(new Error(`runner ${name} exited with ${signal ?? `code ${code}`}`))
        }
        this.#fail(new Error(`runner ${name} has exited`))
        resolve()
      })
    })
    const lines = createInterface({ input: this.#child.stdout as NodeJS.ReadableStream })
    lines.on('line', (line) => {
      let message: RunnerMessage
      try {
        message = JSON.parse(line) as RunnerMessage
      } catch {
        process.stderr.write(`[${name}] ${line}\n`)
        return
      }
      if (message.type === 'error') {
        this.#fail(new Error(`runner ${name} failed: ${String(message.message)}`))
        return
      }
      this.#inbox.push(message)
      this.#deliver()
    })
  }

  /** Spawns runner `name` with `config` and waits for its `ready`. */
  static async start<T extends RunnerMessage = RunnerMessage>(
    name: RunnerName,
    config: object,
    timeoutMs = 30_000,
  ): Promise<{ runner: RunnerProcess; ready: T }> {
    const runner = new RunnerProcess(name, config)
    try {
      const ready = await runner.next<T>('ready', timeoutMs)
      return { runner, ready }
    } catch (err) {
      runner.kill()
      throw err
    }
  }

  /** Sends a command and waits for the reply of type `replyType`. */
  request<T extends RunnerMessage = RunnerMessage>(
    command: RunnerCommand,
    replyType: string,
    timeoutMs = 120_000,
  ): Promise<T> {
    this.#child.stdin?.write(`${JSON.stringify(command)}\n`)
    return this.next<T>(replyType, timeoutMs)
  }

  /** The next message of type `type` (earlier messages of other types are dropped). */
  next<T extends RunnerMessage = RunnerMessage>(type: string, timeoutMs: number): Promise<T> {
    if (this.#waiter) return Promise.reject(new Error(`runner ${this.name}: already waiting`))
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined
        reject(new Error(`runner ${this.name}: no '${type}' within ${timeoutMs} ms`))
      }, timeoutMs)
      this.#waiter = {
        type,
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m as T)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      }
      this.#deliver()
    })
  }

  /** Asks the runner to stop and waits for it to exit (killing it after `timeoutMs`). */
  async stop(timeoutMs = 10_000): Promise<void> {
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.stdin?.write(`${JSON.stringify({ cmd: 'stop' })}\n`)
      this.#child.stdin?.end()
    }
    const timer = setTimeout(() => this.kill(), timeoutMs)
    await this.#exited
    clearTimeout(timer)
  }

  kill(): void {
    this.#child.kill('SIGKILL')
  }

  #deliver(): void {
    const w = this.#waiter
    if (w === undefined) return
    while (this.#inbox.length > 0) {
      const message = this.#inbox.shift() as RunnerMessage
      if (message.type === w.type) {
        this.#waiter = undefined
        w.resolve(message)
        return
      }
    }
    if (this.#failure) {
      this.#waiter = undefined
      w.reject(this.#failure)
    }
  }

  #fail(err: Error): void {
    this.#failure ??= err
    this.#deliver()
  }
}
