/** The machine and the versions a benchmark ran with, printed first and written with the results. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism, release, totalmem } from 'node:os'

export interface MachineInfo {
  cpus: number
  cpuModel: string
  /** From /proc/cpuinfo: family/model/stepping, MHz and whether it runs under a hypervisor. */
  cpuDetails: string
  memoryGiB: number
  kernel: string
  node: string
  redis: string
  redisBenchmark: string
  bullmq: string
  ioredis: string
  hedgeyard: string
  /** `git describe --always --dirty` of the repository, or 'unknown'. */
  commit: string
}

/** The CPU's model name, and family/model, MHz and whether it runs under a hypervisor (/proc/cpuinfo). */
export function cpuInfo(): { model: string; details: string } {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8')
    const field = (name: string) =>
      text
        .split('\n')
        .find((l) => l.startsWith(name))
        ?.split(':')[1]
        ?.trim()
    const isGuest = / hypervisor( |$)/m.test(field('flags') ?? '')
    const details = [
      `family ${field('cpu family') ?? '?'}, model ${field('model\t') ?? field('model') ?? '?'}`,
      `${Math.round(Number(field('cpu MHz') ?? Number.NaN))} MHz`,
      isGuest ? 'virtual machine' : 'no hypervisor flag',
    ].join(', ')
    return { model: field('model name') ?? 'unknown', details }
  } catch {
    return { model: 'unknown', details: '' }
  }
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url)
    return (require(`${name}/package.json`) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

/** The version of the library in this checkout (read from the repository, not through the package). */
function hedgeyardVersion(): string {
  try {
    const pkg = readFileSync(new URL('../../hedgeyard/package.json', import.meta.url), 'utf8')
    return (JSON.parse(pkg) as { version: string }).version
  } catch {
    return 'unknown'
  }
}

function command(file: string, args: string[]): string {
  try {
    return execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

export function machineInfo(redisVersion: string): MachineInfo {
  const cpu = cpuInfo()
  return {
    cpus: availableParallelism(),
    cpuModel: cpu.model,
    cpuDetails: cpu.details,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    redis: redisVersion,
    redisBenchmark: command('redis-benchmark', ['--version']).replace(/^redis-benchmark\s*/, ''),
    bullmq: packageVersion('bullmq'),
    ioredis: packageVersion('ioredis'),
    hedgeyard: hedgeyardVersion(),
    commit: command('git', ['describe', '--always', '--dirty']),
  }
}
