/**
 * What producer-profile and worker-profile measure over their timed jobs, the same way in both:
 * this process's CPU, the bytes it allocated (heap growth between collections, from
 * v8.GCProfiler) and its GC time; with `cpu` or `alloc` set, a CPU profile (100 us sampling) or a
 * sampling heap profile (objects the GC collected included) written to that file, and its top
 * frames or allocation sites printed.
 */
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { GCProfiler } from 'node:v8'

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number }
  selfSize?: number
  children?: ProfileNode[] | number[]
}

/** Files to write a CPU profile or a sampling heap profile to. */
export interface CaptureFiles {
  cpu?: string | undefined
  alloc?: string | undefined
}

/** This process's cost over what ran since `startCapture`, per job. */
export interface CaptureCost {
  cpuUsPerJob: number
  bytesPerJob: number
  gcMsPer1000Jobs: number
}

/** A capture under way: `stop(jobs)` ends it and divides by the jobs run meanwhile. */
export interface Capture {
  stop(jobs: number): Promise<CaptureCost>
  /** Writes the profiles asked for and prints their top entries (after the figures are out). */
  report(jobs: number): Promise<void>
}

/** Starts measuring this process (and profiling it, when files are given). */
export async function startCapture(files: CaptureFiles): Promise<Capture> {
  const session = new Session()
  session.connect()
  if (files.cpu !== undefined) {
    await session.post('Profiler.enable')
    await session.post('Profiler.setSamplingInterval', { interval: 100 })
    await session.post('Profiler.start')
  }
  if (files.alloc !== undefined) {
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 512,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    })
  }
  const gc = new GCProfiler()
  gc.start()
  const heapBefore = process.memoryUsage().heapUsed
  const cpuBefore = process.cpuUsage()
  return {
    async stop(jobs) {
      const cpu = process.cpuUsage(cpuBefore)
      const heapAfter = process.memoryUsage().heapUsed
      const { statistics } = gc.stop()
      // Allocated: what the heap grew by up to each collection, and after the last one.
      let allocated = 0
      let last = heapBefore
      for (const s of statistics) {
        allocated += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - last)
        last = s.afterGC.heapStatistics.usedHeapSize
      }
      allocated += Math.max(0, heapAfter - last)
      const gcMs = statistics.reduce((sum, s) => sum + s.cost, 0) / 1000
      const round = (n: number) => Math.round(n * 10) / 10
      return {
        cpuUsPerJob: round((cpu.user + cpu.system) / jobs),
        bytesPerJob: Math.round(allocated / jobs),
        gcMsPer1000Jobs: round((gcMs / jobs) * 1000),
      }
    },
    async report(jobs) {
      if (files.cpu !== undefined) {
        const { profile } = await session.post('Profiler.stop')
        writeFileSync(files.cpu, JSON.stringify(profile))
        const nodes = new Map(profile.nodes.map((n) => [n.id, n as ProfileNode]))
        const samples = new Map<ProfileNode, number>()
        for (const id of profile.samples ?? []) {
          const node = nodes.get(id) as ProfileNode
          samples.set(node, (samples.get(node) ?? 0) + 1)
        }
        printTop('self CPU', samples, (n) => n.callFrame.functionName !== '(idle)', '%')
      }
      if (files.alloc !== undefined) {
        const { profile } = await session.post('HeapProfiler.stopSampling')
        writeFileSync(files.alloc, JSON.stringify(profile))
        const sizes = new Map<ProfileNode, number>()
        const walk = (n: ProfileNode) => {
          sizes.set(n, n.selfSize ?? 0)
          for (const c of (n.children ?? []) as ProfileNode[]) walk(c)
        }
        walk(profile.head as ProfileNode)
        printTop('bytes allocated per job', sizes, () => true, jobs)
      }
      session.disconnect()
    },
  }
}

/** The 15 largest entries by function (name, file, line), as a share or per job. */
function printTop(
  title: string,
  weights: Map<ProfileNode, number>,
  isCounted: (n: ProfileNode) => boolean,
  per: number | '%',
): void {
  const byFunction = new Map<string, number>()
  let total = 0
  for (const [node, weight] of weights) {
    if (!isCounted(node)) continue
    const f = node.callFrame
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').slice(-2).join('/')}:${f.lineNumber + 1}`
    byFunction.set(name, (byFunction.get(name) ?? 0) + weight)
    total += weight
  }
  process.stdout.write(`${title}:\n`)
  for (const [name, weight] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 15)) {
    const shown = per === '%' ? `${((weight / total) * 100).toFixed(1)}%` : `${Math.round(weight / per)} B`
    process.stdout.write(`  ${shown.padStart(7)}  ${name}\n`)
  }
}
