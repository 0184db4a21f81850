/**
 * The one launcher of a private redis-server, shared by the tests, the benchmarks and the demo: a
 * free loopback port, no persistence unless the caller's arguments ask for it, its own data
 * directory, ready once it says so on its log.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Options of {@link startRedisServer}. */
export interface RedisServerOptions {
  /** Arguments after the defaults (port, bind, no persistence, dir); later ones win. */
  args: readonly string[]
  /** The binary, looked up on PATH. */
  binary: string
  /** How long to wait for "Ready to accept connections". */
  readyTimeoutMs: number
  /** In its own process group, so that a Ctrl-C on the terminal reaches only the caller. */
  isDetached: boolean
  /** Added to the message when the binary cannot be started (another way to get a Redis). */
  whenMissing: string
}

/** Defaults of {@link startRedisServer}. */
export const REDIS_SERVER_DEFAULTS: Readonly<RedisServerOptions> = Object.freeze({
  args: [],
  binary: 'redis-server',
  readyTimeoutMs: 10_000,
  isDetached: false,
  whenMissing: '',
})

/** A redis-server process started by {@link startRedisServer}. */
export interface RedisServer {
  url: string
  port: number
  /** Its cluster bus port, when the launcher chose one (`--cluster-enabled` without `--cluster-port`). */
  busPort?: number
  /** Its data directory (removed by `stop`). */
  dir: string
  pid: number
  /** `redis_version`, from its start-up log. */
  version: string
  /** SIGTERM (a clean shutdown), then removes its directory. */
  stop(): Promise<void>
  /** SIGKILL at once, leaving its directory. */
  kill(): void
  /** Stops it (SIGTERM, or SIGKILL for a crash) and starts it again on the same port and data. */
  restart(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>
}

/** A TCP port free on loopback now (another process may take it before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

async function signal(child: ChildProcess, name: 'SIGTERM' | 'SIGKILL'): Promise<void> {
  if (child.pid === undefined || !isRunning(child)) return
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill(name)
  await exited
}

/** Spawns the server and resolves with its version once its log says it accepts connections. */
function launch(o: RedisServerOptions, args: string[]): Promise<{ child: ChildProcess; version: string }> {
  const child = spawn(o.binary, args, { detached: o.isDetached, stdio: ['ignore', 'pipe', 'pipe'] })
  // The log is read to its end, so that a full pipe never blocks the server; the tail is kept for errors.
  let log = ''
  const keep = (data: Buffer) => {
    log = (log + data.toString()).slice(-4_000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  return new Promise((resolve, reject) => {
    const settle = (err: Error | undefined) => {
      clearTimeout(timer)
      child.stdout?.off('data', onData)
      child.off('exit', onExit)
      if (err === undefined) resolve({ child, version: /version=([^\s,]+)/.exec(log)?.[1] ?? 'unknown' })
      else {
        if (isRunning(child)) child.kill('SIGKILL')
        reject(err)
      }
    }
    const onData = () => {
      if (log.includes('Ready to accept connections')) settle(undefined)
    }
    const onExit = (code: number | null) => settle(new Error(`${o.binary} exited with code ${code}:\n${log}`))
    const timer = setTimeout(
      () => settle(new Error(`${o.binary} did not start within ${o.readyTimeoutMs} ms:\n${log}`)),
      o.readyTimeoutMs,
    )
    child.stdout?.on('data', onData)
    child.once('exit', onExit)
    child.once('error', (err) => {
      const hint = ['apt-get install -y redis-server, or scripts/bootstrap.sh --redis', o.whenMissing]
      settle(
        new Error(
          `cannot start ${o.binary} (${err.message}): install it (${hint.filter(Boolean).join('; ')})`,
        ),
      )
    })
  })
}

/** Starts that lose their port to another process before redis-server binds it, tried again. */
const PORT_ATTEMPTS = 5

/**
 * Starts a redis-server on a free loopback port with its own data directory, without persistence
 * (`--save ''`, `--appendonly no`, unless `args` say otherwise), and resolves once it accepts
 * connections. With `--cluster-enabled yes` and no `--cluster-port` in `args`, its cluster bus
 * port is a free port too (the default, port + 10000, may be taken or past 65535). A free port
 * can be taken by another process before the server binds it: such a start is tried again on
 * other ports. It is killed if this process exits first; the caller must `stop()` it.
 */
export async function startRedisServer(options: Partial<RedisServerOptions> = {}): Promise<RedisServer> {
  const o = { ...REDIS_SERVER_DEFAULTS, ...options }
  const clusterAt = o.args.indexOf('--cluster-enabled')
  const hasBus = clusterAt >= 0 && o.args[clusterAt + 1] === 'yes' && !o.args.includes('--cluster-port')
  const dir = mkdtempSync(join(tmpdir(), 'hedgeyard-redis-'))
  let port = 0
  let busPort: number | undefined
  let args: string[] = []
  let child: ChildProcess | undefined
  const killOnExit = () => child?.kill('SIGKILL')
  process.on('exit', killOnExit)
  try {
    let started: { child: ChildProcess; version: string } | undefined
    for (let attempt = 1; started === undefined; attempt++) {
      port = await freePort()
      args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir]
      if (hasBus) {
        busPort = await freePort()
        args.push('--cluster-port', String(busPort))
      }
      args.push(...o.args)
      try {
        started = await launch(o, args)
      } catch (err) {
        if (attempt >= PORT_ATTEMPTS || !/Address already in use/.test((err as Error).message)) throw err
        // What the failed start wrote (a cluster node's nodes.conf names its ports) goes with it.
        for (const name of readdirSync(dir)) rmSync(join(dir, name), { recursive: true, force: true })
      }
    }
    child = started.child
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      ...(busPort === undefined ? {} : { busPort }),
      dir,
      get pid() {
        return child?.pid ?? 0
      },
      version: started.version,
      async stop() {
        if (child) await signal(child, 'SIGTERM')
        process.off('exit', killOnExit)
        rmSync(dir, { recursive: true, force: true })
      },
      kill() {
        if (child && isRunning(child)) child.kill('SIGKILL')
      },
      async restart(name = 'SIGTERM') {
        if (child) await signal(child, name)
        child = (await launch(o, args)).child
      },
    }
  } catch (err) {
    process.off('exit', killOnExit)
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}
