import { type ChildProcess, spawn } from 'node:child_process'
import { CLI, eventually } from './helpers.js'

/** Starts `hedgeyard exporter` on a free port and resolves with its base URL once it listens. */
export async function startExporter(
  args: string[],
  cleanups: (() => Promise<unknown>)[],
): Promise<{ url: string; child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [CLI, 'exporter', '--port', '0', '--host', '127.0.0.1', ...args], {
    env: { ...process.env, HEDGEYARD_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout?.on('data', (d) => {
    output += d
  })
  child.stderr?.on('data', (d) => {
    output += d
  })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  cleanups.push(async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    await exited
  })
  const url = await eventually(() => {
    if (child.exitCode !== null) throw new Error(`exporter exited:\n${output}`)
    return /"url":"(http:\/\/[^"]+)\/metrics"/.exec(output)?.[1]
  }, 15_000)
  return { url: url as string, child, output: () => output }
}
