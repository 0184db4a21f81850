import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const BENCH = fileURLToPath(new URL('../packages/bench/dist/main.js', import.meta.url))

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BENCH, ...args])
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

describe('npm run bench command line', () => {
  it('--help lists every option and suite, and starts nothing', async () => {
    const { code, stdout } = await bench(['--help'])
    expect(code).toBe(0)
    for (const option of ['--suites', '--reps', '--quick', '--no-write', '--profile', '--docs-dir'])
      expect(stdout).toContain(option)
    expect(stdout).toContain('dispatch-cost')
  })

  it('refuses an unknown option or suite with exit code 2, naming it, before starting Redis', async () => {
    const option = await bench(['--bogus'])
    expect(option.code).toBe(2)
    expect(option.stderr).toContain("Unknown option '--bogus'")
    expect(option.stderr).toContain('usage:')
    const suite = await bench(['--suites', 'throughput,nope'])
    expect(suite.code).toBe(2)
    expect(suite.stderr).toMatch(/unknown suite\(s\) nope: pick from throughput, /)
    const reps = await bench(['--reps', '0'])
    expect(reps.code).toBe(2)
    expect(reps.stderr).toContain('--reps must be a positive integer (got 0)')
  })
})
