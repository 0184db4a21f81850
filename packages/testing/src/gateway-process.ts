import { type ChildProcess, spawn } from 'node:child_process'
import { CLI, eventually } from './helpers.js'

/** A `hedgeyard gateway` process started by a test. */
export interface GatewayProcess {
  url: string
  child: ChildProcess
  /** What it printed so far, stdout and stderr together. */
  output: () => string
}

/**
 * Starts `hedgeyard gateway` for `pool` on a free port (more flags in `extra`, more environment
 * in `env`) and waits for the URL it prints; fails with its output if it exits first.
 */
export async function spawnGateway(options: {
  redis: string
  pool: string
  extra?: string[]
  env?: Record<string, string>
}): Promise<GatewayProcess> {
  const child = spawn(
    process.execPath,
    [
      CLI,
      'gateway',
      '--redis',
      options.redis,
      '--pool',
      options.pool,
      '--port',
      '0',
      ...(options.extra ?? []),
    ],
    {
      env: { ...process.env, HEDGEYARD_LOG_LEVEL: 'info', ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let output = ''
  child.stdout?.on('data', (d) => {
    output += d
  })
  child.stderr?.on('data', (d) => {
    output += d
  })
  const url = await eventually(() => {
    if (child.exitCode !== null) throw new Error(`gateway exited:\n${output}`)
    return /"url":"(http:[^"]+)"/.exec(output)?.[1]
  }, 15_000)
  return { url: url as string, child, output: () => output }
}
