import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { tableBlocks } from '../packages/bench/dist/tables-file.js'
import { BOUNCE_FLOOR, DISPATCH_FLOOR, LOCAL_FLOOR } from '../packages/bench/dist/targets.js'

const run = promisify(execFile)
const BENCH = fileURLToPath(new URL('../packages/bench/dist/main.js', import.meta.url))

/** Runs one of the bench's scripts (main.js by default) to its end: its exit code and output. */
async function bench(
  args: string[],
  script = BENCH,
  timeoutMs = 50_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [script, ...args], { timeout: timeoutMs })
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
    expect(reps.stderr).toContain('--reps must be an integer >= 1 (got 0)')
  })
})

describe("the bench's other commands", () => {
  const SCRIPTS = [
    'ab-builds',
    'chunk-cost',
    'dispatch-cost',
    'exporter-cost',
    'hedging',
    'limits',
    'memory',
    'producer-profile',
    'scaling',
    'tracing-cost',
    'worker-profile',
  ]
  const script = (name: string) =>
    fileURLToPath(new URL(`../packages/bench/dist/${name}.js`, import.meta.url))

  it.each(SCRIPTS)(
    '%s: --help prints its usage and starts nothing; an unknown option is refused with exit code 2',
    async (name) => {
      const help = await bench(['--help'], script(name), 10_000)
      expect(help.code).toBe(0)
      expect(help.stdout).toMatch(new RegExp(`^usage: .*${name}\\.js`))
      const unknown = await bench(['--bogus'], script(name), 10_000)
      expect(unknown.code).toBe(2)
      expect(unknown.stderr).toContain("Unknown option '--bogus'")
      expect(unknown.stderr).toContain('usage:')
      expect(unknown.stderr).not.toContain('    at ')
    },
  )
})

describe("the gateway's load check (load.js)", () => {
  const LOAD = fileURLToPath(new URL('../packages/gateway/dist/load.js', import.meta.url))

  it('--help prints its usage and starts nothing; an unknown option or a bad number is refused with exit code 2', async () => {
    const help = await bench(['--help'], LOAD, 10_000)
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/^usage: .*load\.js/)
    for (const option of ['--rate', '--seconds', '--streams', '--quick', '--cpu-prof'])
      expect(help.stdout).toContain(option)
    const unknown = await bench(['--bogus'], LOAD, 10_000)
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("Unknown option '--bogus'")
    const rate = await bench(['--rate', 'fast'], LOAD, 10_000)
    expect(rate.code).toBe(2)
    expect(rate.stderr).toContain('--rate must be a whole number from 1 (got fast)')
    expect(rate.stderr).not.toContain('    at ')
  })
})

describe('A/B of two builds (ab-builds.js)', () => {
  const AB = fileURLToPath(new URL('../packages/bench/dist/ab-builds.js', import.meta.url))
  const ROOT = fileURLToPath(new URL('..', import.meta.url))
  const ab = (args: string[]) => bench(args, AB, 60_000)

  it('refuses a run without both builds, or with an unknown option, with exit code 2 and its usage', async () => {
    const missing = await ab(['--before', ROOT])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--before <root> and --after <root> are required')
    expect(missing.stderr).toContain('usage:')
    const unknown = await ab(['--before', ROOT, '--after', ROOT, '--bogus'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("Unknown option '--bogus'")
  })

  it('runs each build in turn and prints both builds and the paired ratios', async () => {
    const { code, stdout } = await ab([
      '--before',
      ROOT,
      '--after',
      ROOT,
      '--pairs',
      '1',
      '--workload',
      'sequential',
    ])
    expect(code).toBe(0)
    const runs = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { build: string; jobsPerSecond: number; p50Us: number })
    expect(runs.map((r) => r.build)).toEqual(['before', 'after'])
    for (const r of runs) expect(r.jobsPerSecond > 0 && r.p50Us > 0).toBe(true)
    expect(stdout).toMatch(/1 pairs, concurrency 50, workload sequential/)
    expect(stdout).toMatch(/jobsPerSecond +before +\d+\.\d +after +\d+\.\d +after\/before \d\.\d{3}/)
  })
})

describe('latency suites', () => {
  it('run the plain-commands baseline and the floors beside Hedgeyard and BullMQ, and write their tables into the doc and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hy-bench-'))
    // A hand-written doc: its prose stays, the block of each table it marks is replaced.
    const prose =
      '# Benchmarks\n\nWritten by hand.\n\n<!-- table:closed-loop -->\nold\n<!-- /table -->\n\nThe end.\n'
    writeFileSync(join(dir, 'benchmarks.md'), prose)
    try {
      const { code, stderr } = await bench([
        '--quick',
        '--suites',
        'closed-loop,open-loop',
        '--docs-dir',
        dir,
      ])
      expect(code, stderr).toBe(0)
      const results = JSON.parse(readFileSync(join(dir, 'bench', 'results.json'), 'utf8')) as {
        closedLoop: { rows: { system: string; runs: { jobs: number; latency: { p50Us: number } }[] }[] }
        openLoop: {
          rows: {
            system: string
            handlerP99Ms?: { median: number }
            overheadP99Us?: { median: number }
            runs: { jobs: number; stolenCpus: number }[]
          }[]
        }
        targets: {
          id: string
          plain?: { value: number; isMet: boolean }
          floor?: { name: string; value: number }
        }[]
      }
      const plain = results.closedLoop.rows.find((r) => r.system === 'plain')
      expect(plain?.runs[0]?.latency.p50Us).toBeGreaterThan(0)
      // The plain worker runs the same 5 ms handler and sends back how long it took, so the
      // latency minus the handler's own time is known for it too.
      const openPlain = results.openLoop.rows.find((r) => r.system === 'plain')
      expect(openPlain?.handlerP99Ms?.median).toBeGreaterThanOrEqual(5)
      expect(openPlain?.overheadP99Us?.median).toBeGreaterThan(0)
      for (const id of ['closed-p50', 'closed-p99', 'open-p99']) {
        const target = results.targets.find((t) => t.id === id)
        expect(target?.plain?.value, id).toBeGreaterThan(0)
      }
      // The floors: a bare PUBLISH round trip in both suites, and in the open loop the same
      // generator and handler in one process.
      const floor = results.openLoop.rows.find((r) => r.system === 'local')
      expect(floor?.runs[0]?.jobs).toBeGreaterThan(0)
      expect(floor?.handlerP99Ms?.median).toBeGreaterThanOrEqual(5)
      expect(results.closedLoop.rows.map((r) => r.system)).toEqual(['hedgeyard', 'bullmq', 'plain', 'pubsub'])
      expect(
        results.openLoop.rows.find((r) => r.system === 'pubsub')?.handlerP99Ms?.median,
      ).toBeGreaterThanOrEqual(5)
      const floorOf = (id: string) => results.targets.find((t) => t.id === id)?.floor
      expect(floorOf('open-p99')?.name).toBe(LOCAL_FLOOR)
      expect(floorOf('closed-p99')?.name).toBe(BOUNCE_FLOOR)
      for (const id of ['closed-p50', 'closed-p99', 'open-p99'])
        expect(floorOf(id)?.value, id).toBeGreaterThan(0)
      // Every run says how much CPU the hypervisor took from the machine (/proc/stat on Linux).
      for (const r of floor?.runs ?? []) expect(r.stolenCpus).toBeGreaterThanOrEqual(0)
      const tables = tableBlocks(readFileSync(join(dir, 'bench', 'tables.md'), 'utf8'))
      for (const name of ['closed-loop', 'open-loop']) {
        expect(tables.get(name), name).toMatch(/^\| plain commands +\|/m)
        expect(tables.get(name), name).toMatch(/^\| bare round trip \(PUBLISH\) +\|/m)
      }
      expect(tables.get('open-loop')).toMatch(/^\| no dispatch \(one process\) +\|/m)
      expect(tables.get('conditions')).toMatch(/\| b\. closed loop +\| 4 +\|/)
      const doc = readFileSync(join(dir, 'benchmarks.md'), 'utf8')
      expect(doc).toBe(prose.replace('old', tables.get('closed-loop') ?? 'missing'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('throughput suite', () => {
  it('counts the commands each process sends in a run of its own, and the system calls of every run', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hy-bench-'))
    try {
      const { code, stderr } = await bench(['--quick', '--suites', 'throughput', '--docs-dir', dir])
      expect(code, stderr).toBe(0)
      const results = JSON.parse(readFileSync(join(dir, 'bench', 'results.json'), 'utf8')) as {
        throughput: {
          rows: {
            system: string
            commandsPerJob: { producer: Record<string, number>; worker: Record<string, number> }
            runs: { syscallsPerJob: { producer: { writes: number }; worker: { reads: number } } }[]
          }[]
        }
      }
      for (const row of results.throughput.rows) {
        // Both send their jobs with a script (Hedgeyard's dispatch, BullMQ's addJob), one per job or per batch.
        expect(row.commandsPerJob.producer.evalsha, row.system).toBeGreaterThan(0)
        expect(row.commandsPerJob.producer.evalsha, row.system).toBeLessThanOrEqual(1.01)
        expect(Object.keys(row.commandsPerJob.worker).length, row.system).toBeGreaterThan(0)
        for (const run of row.runs) {
          expect(run.syscallsPerJob.producer.writes, row.system).toBeGreaterThan(0)
          expect(run.syscallsPerJob.worker.reads, row.system).toBeGreaterThan(0)
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('dispatch cost suite', () => {
  it('measures the floor beside the library script, judges the library script, and reports the floor', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hy-bench-'))
    try {
      const { code, stderr } = await bench(['--quick', '--suites', 'dispatch-cost', '--docs-dir', dir])
      expect(code, stderr).toBe(0)
      const results = JSON.parse(readFileSync(join(dir, 'bench', 'results.json'), 'utf8')) as {
        dispatchCost: {
          variants: {
            variant: string
            isFloor: boolean
            bySize: { size: number; redisCpuUsPerJob: { median: number } }[]
          }[]
        }
        targets: { id: string; label: string; floor?: { name: string; value: number } }[]
      }
      const floor = results.dispatchCost.variants.filter((v) => v.isFloor)
      expect(floor.map((v) => v.variant)).toEqual(['batch 64, floor'])
      for (const size of floor[0]?.bySize ?? [])
        expect(size.redisCpuUsPerJob.median, String(size.size)).toBeGreaterThan(0)
      expect(results.dispatchCost.variants.filter((v) => !v.isFloor)).toHaveLength(4)
      const target = results.targets.find((t) => t.id === 'dispatch-1000')
      expect(target?.label).not.toContain('floor')
      expect(target?.floor?.name).toBe(DISPATCH_FLOOR)
      expect(target?.floor?.value).toBeGreaterThan(0)
      const tables = tableBlocks(readFileSync(join(dir, 'bench', 'tables.md'), 'utf8'))
      expect(tables.get('dispatch-cost')).toMatch(/^\| batch 64, floor +\| 1000 +\|/m)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('docs/benchmarks.md', () => {
  it('shows every table of the last run as the run wrote it', () => {
    const docs = fileURLToPath(new URL('../docs/', import.meta.url))
    const written = tableBlocks(readFileSync(join(docs, 'bench', 'tables.md'), 'utf8'))
    const shown = tableBlocks(readFileSync(join(docs, 'benchmarks.md'), 'utf8'))
    expect([...shown.keys()].sort()).toEqual([...written.keys()].sort())
    for (const [name, table] of written) expect(shown.get(name), name).toBe(table)
  })
})
