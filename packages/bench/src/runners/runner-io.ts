/**
 * The runner side of the parent-runner protocol: a runner gets its config as JSON in argv[2],
 * commands as JSON lines on stdin, and answers with JSON lines on stdout (nothing else may write
 * there). It exits when its stdin closes, so a runner never outlives the benchmark that spawned it.
 */
import { Socket } from 'node:net'
import { createInterface } from 'node:readline'
import { Redis } from 'ioredis'

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

/** What a process sent to Redis and how often it touched its sockets to Redis. */
export interface RedisTraffic {
  /** Commands sent, by name. */
  commands: Record<string, number>
  /** write() calls on sockets to Redis: one per command, or per pipeline flush. */
  socketWrites: number
  /** Chunks read from sockets to Redis: about one per wake-up that brought replies. */
  socketReads: number
}

/**
 * Counts the commands every ioredis connection of this process sends, by name (pipelined and
 * auto-pipelined commands included: ioredis hands each of them to `Redis#sendCommand`), and the
 * writes and reads on sockets to the Redis at `redisUrl`. A counter increment each, the same
 * for Hedgeyard and BullMQ (both use this ioredis).
 */
export function countRedisTraffic(redisUrl: string): { take(): RedisTraffic } {
  const port = Number(new URL(redisUrl).port)
  let counts = new Map<string, number>()
  let socketWrites = 0
  let socketReads = 0
  const proto = Redis.prototype as unknown as {
    sendCommand: (command: { name: string }, ...rest: unknown[]) => unknown
  }
  const original = proto.sendCommand
  proto.sendCommand = function (this: unknown, command: { name: string }, ...rest: unknown[]) {
    counts.set(command.name, (counts.get(command.name) ?? 0) + 1)
    return original.call(this, command, ...rest)
  }
  const socket = Socket.prototype as unknown as {
    write: (...args: unknown[]) => boolean
    push: (...args: unknown[]) => boolean
    remotePort?: number
  }
  const write = socket.write
  socket.write = function (this: Socket, ...args: unknown[]) {
    if (this.remotePort === port) socketWrites++
    return write.apply(this, args)
  }
  const push = socket.push
  socket.push = function (this: Socket, ...args: unknown[]) {
    if (args[0] !== null && this.remotePort === port) socketReads++
    return push.apply(this, args)
  }
  return {
    take() {
      const out = { commands: Object.fromEntries(counts), socketWrites, socketReads }
      counts = new Map()
      socketWrites = 0
      socketReads = 0
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
