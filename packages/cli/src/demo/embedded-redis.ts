import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** A redis-server this process started, on a free loopback port, without persistence. */
export interface EmbeddedRedis {
  url: string
  pid: number
  /** Stops it with SIGTERM and removes its directory. */
  stop(): Promise<void>
  /** Kills it at once (a second Ctrl-C), leaving its directory. */
  kill(): void
}

/** A TCP port free on loopback now (another process may take it before it is used). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

/** Starts `redis-server` from the PATH; fails with a message that says how to get one. */
export async function startEmbeddedRedis(): Promise<EmbeddedRedis> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'hedgeyard-demo-'))
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    // Its own process group: a Ctrl-C on the terminal reaches the demo, which stops Redis last.
    { detached: true, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  let output = ''
  child.stdout.on('data', (d) => {
    output += d
  })
  await new Promise<void>((resolve, reject) => {
    child.once('error', (err) =>
      reject(
        new Error(
          `cannot start redis-server (${err.message}): install it (apt-get install -y redis-server) or set HEDGEYARD_REDIS_URL`,
        ),
      ),
    )
    const timer = setTimeout(
      () => reject(new Error(`redis-server did not start within 10 s:\n${output}`)),
      10_000,
    )
    const onData = () => {
      if (output.includes('Ready to accept connections')) {
        clearTimeout(timer)
        child.stdout.off('data', onData)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`redis-server exited with code ${code}:\n${output}`))
    })
  })
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid as number,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    },
  }
}
