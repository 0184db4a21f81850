import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { targetsTable } from '../packages/bench/dist/report-tables.js'
import { BOUNCE_FLOOR, DISPATCH_FLOOR, LOCAL_FLOOR, type Target } from '../packages/bench/dist/targets.js'

const run = promisify(execFile)
const BENCH = fileURLToPath(new URL('../packages/bench/dist/main.js', import.meta.url))

async function bench(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [BENCH, ...args], { timeout: 50_000 })
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

describe('latency suites', () => {
  it('run the plain-commands baseline and the floors beside Hedgeyard and BullMQ, and report them in the doc and the targets', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hy-bench-'))
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
      const doc = readFileSync(join(dir, 'benchmarks.md'), 'utf8')
      expect(doc.match(/^\| plain commands +\|/gm)).toHaveLength(2)
      expect(doc).toContain('- **Plain commands** (the latency suites only)')
      expect(doc.match(/^\| no dispatch \(one process\) +\|/gm)).toHaveLength(1)
      expect(doc.match(/^\| bare round trip \(PUBLISH\) +\|/gm)).toHaveLength(2)
      expect(doc).toContain('- **No dispatch** (the open loop only)')
      expect(doc).toContain('- **Bare round trip** (the latency suites only)')
      expect(doc).toContain('- **The floor, no dispatch at all** in the same run')
      expect(doc).toMatch(/\| suite .*\| stolen by the hypervisor, CPUs \|/)
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
      const doc = readFileSync(join(dir, 'benchmarks.md'), 'utf8')
      expect(doc).toContain('- **The floor** (`batch 64, floor`, not judged)')
      expect(doc).toMatch(/^\| batch 64, floor +\| 1000 +\|/m)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('targets table', () => {
  const target = (isMet: boolean, plainMet: boolean, floorMet?: boolean): Target => ({
    id: 'closed-p99',
    label: 'closed loop p99 against BullMQ',
    goal: '<= 0.5x',
    measured: isMet ? '0.45x' : '0.70x',
    value: isMet ? 0.45 : 0.7,
    isMet,
    ...(isMet ? {} : { missedBy: '39% over' }),
    plain: { measured: plainMet ? '0.40x' : '0.53x', value: plainMet ? 0.4 : 0.53, isMet: plainMet },
    ...(floorMet === undefined
      ? {}
      : {
          floor: {
            name: LOCAL_FLOOR,
            measured: floorMet ? '6.1 ms' : '7.6 ms',
            value: floorMet ? 6.1 : 7.6,
            kind: 'latency' as const,
            isMet: floorMet,
          },
        }),
  })

  it('says a missed latency bar is missed by the plain-commands baseline too, only when it is', () => {
    expect(targetsTable([target(false, false)])).toContain(
      '**no**: 39% over; plain commands, no library: 0.53x, over the bar too',
    )
    const reachable = targetsTable([target(false, true)])
    expect(reachable).toContain('**no**: 39% over')
    expect(reachable).not.toContain('over the bar too')
    const met = targetsTable([target(true, false)])
    expect(met).toMatch(/\| yes +\|/)
    expect(met).not.toContain('over the bar too')
  })

  it("puts a missed bar below the machine's floor only when the floor with no dispatch misses it too", () => {
    expect(targetsTable([target(false, false, false)])).toContain(
      "no dispatch at all (one process, no Redis): 7.6 ms, over the bar in every run too: below this machine's floor",
    )
    expect(targetsTable([target(false, false, true)])).not.toContain("below this machine's floor")
    expect(targetsTable([target(true, true, false)])).not.toContain("below this machine's floor")
    expect(targetsTable([target(false, false)])).not.toContain('no dispatch')
  })
})
