/**
 * The runner side of the parent-runner protocol: a runner gets its config as JSON in argv[2],
 * commands as JSON lines on stdin, and answers with JSON lines on stdout (nothing else may write
 * there). It exits when its stdin closes, so a runner never outlives the benchmark that spawned it.
 */
import { subscribe } from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'

/** A command from the parent. `atLeast`: answer `report` once that many jobs were processed. */
export interface RunnerCommand {
  cmd: 'warmup' | 'mark' | 'go' | 'report' | 'stop'
  atLeast?: number
}

/** CPU time of this process since `start`, in microseconds (user + system). */
export function cpuSinceUs(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start)
  return d.user + d.system
}

/** `process.hrtime.bigint()` as a string: CLOCK_MONOTONIC, comparable across processes of one host. */
export function nowNs(): string {
  return process.hrtime.bigint().toString()
}

/** Writes one message to the parent. */
export function emit<T extends { type: string }>(message: T): void {
  process.stdout.write(`${JSON.stringify(message)}\n`)
}

/** The runner's config, from argv[2]. */
export function readConfig<T>(): T {
  const text = process.argv[2]
  if (text === undefined) throw new Error('a runner takes its config as JSON in its first argument')
  return JSON.parse(text) as T
}

/**
 * Runs `handle` for each command, one at a time in arrival order. A failing command reports
 * `{ type: 'error' }` and ends the process with code 1; a closed stdin ends it with code 0.
 */
export function serveCommands(handle: (command: RunnerCommand) => Promise<void>): void {
  const lines = createInterface({ input: process.stdin })
  let chain = Promise.resolve()
  lines.on('line', (line) => {
    if (line.trim() === '') return
    chain = chain.then(() => handle(JSON.parse(line) as RunnerCommand)).catch((err: unknown) => fail(err))
  })
  lines.on('close', () => {
    void chain.finally(() => process.exit(0))
  })
}

/** Reports an error to the parent and exits. */
export function fail(err: unknown): never {
  emit({ type: 'error', message: err instanceof Error ? (err.stack ?? err.message) : String(err) })
  process.exit(1)
}

/** What a process sent to Redis over a phase. */
export interface RedisTraffic {
  /** Commands sent, by name: only in a counted run (see {@link countTraffic}), {} otherwise. */
  commands: Record<string, number>
  /** write() and read() system calls of this process (/proc/self/io; NaN elsewhere): nearly all on its sockets to Redis. */
  writes: number
  reads: number
}

function syscalls(): { writes: number; reads: number } {
  try {
    const io = readFileSync('/proc/self/io', 'utf8')
    const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(io)?.[1] ?? Number.NaN)
    return { writes: field('syscw'), reads: field('syscr') }
  } catch {
    return { writes: Number.NaN, reads: Number.NaN }
  }
}

/**
 * The traffic of this process since the last `take()`. The kernel counts the system calls, at no
 * cost to the process. Commands are counted only when `isCountingCommands`: on ioredis's
 * `ioredis:command` tracing channel, which costs a few microseconds per command (the same for
 * every system: Hedgeyard and BullMQ both use this ioredis), so a suite counts them in a run of
 * its own, apart from the runs it times.
 */
export function countTraffic(isCountingCommands: boolean): { take(): RedisTraffic } {
  let counts = new Map<string, number>()
  if (isCountingCommands) {
    // The start event of the tracing channel 'ioredis:command': one per command written.
    subscribe('tracing:ioredis:command:start', (message) => {
      const { command } = message as { command: string }
      counts.set(command, (counts.get(command) ?? 0) + 1)
    })
  }
  let last = syscalls()
  return {
    take() {
      const now = syscalls()
      const out = {
        commands: Object.fromEntries(counts),
        writes: now.writes - last.writes,
        reads: now.reads - last.reads,
      }
      counts = new Map()
      last = now
      return out
    },
  }
}

/** Resolves once `check()` is true, looking again whenever `notify` is called. */
export class Waiter {
  #waiting: { check: () => boolean; resolve: () => void }[] = []

  until(check: () => boolean): Promise<void> {
    if (check()) return Promise.resolve()
    return new Promise((resolve) => this.#waiting.push({ check, resolve }))
  }

  notify(): void {
    if (this.#waiting.length === 0) return
    this.#waiting = this.#waiting.filter((w) => {
      if (!w.check()) return true
      w.resolve()
      return false
    })
  }
}
