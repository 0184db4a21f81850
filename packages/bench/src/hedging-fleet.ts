import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChildMessage, ParentMessage, WorkerConfig, WorkerReport } from './hedging-worker.js'

/** Worker processes of the hedging benchmark, each running hedging-worker.js. */
export interface Fleet {
  workerIds: string[]
  /** The counters of every process, added up. */
  report(): Promise<Omit<WorkerReport, 'type'>>
  /** Drains every worker and waits for the processes to exit. */
  close(): Promise<void>
}

const WORKER_SCRIPT = fileURLToPath(new URL('./hedging-worker.js', import.meta.url))
const READY_TIMEOUT_MS = 15_000
const REPORT_TIMEOUT_MS = 5_000
const CLOSE_TIMEOUT_MS = 10_000

function waitFor<T extends ChildMessage['type']>(
  child: ChildProcess,
  type: T,
  timeoutMs: number,
): Promise<Extract<ChildMessage, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: ChildMessage) => {
      if (message.type !== type) return
      cleanup()
      resolve(message as Extract<ChildMessage, { type: T }>)
    }
    const onExit = (code: number | null) => {
      cleanup()
      reject(new Error(`worker process ${child.pid} exited (code ${code}) before sending '${type}'`))
    }
    const timer = setTimeout(() => {
      cleanup()
      reject(new Error(`worker process ${child.pid} sent no '${type}' within ${timeoutMs} ms`))
    }, timeoutMs)
    const cleanup = () => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** Spawns `processes` worker processes (with `process.execPath`) and waits until all are registered. */
export async function startFleet(processes: number, config: Omit<WorkerConfig, 'idPrefix'>): Promise<Fleet> {
  const children: ChildProcess[] = []
  const killAll = () => {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  }
  process.once('exit', killAll)
  const readies: Promise<Extract<ChildMessage, { type: 'ready' }>>[] = []
  for (let p = 1; p <= processes; p++) {
    const workerConfig: WorkerConfig = { ...config, idPrefix: `hedge-p${p}` }
    const child = spawn(process.execPath, [WORKER_SCRIPT, JSON.stringify(workerConfig)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    children.push(child)
    readies.push(waitFor(child, 'ready', READY_TIMEOUT_MS))
  }
  let workerIds: string[]
  try {
    workerIds = (await Promise.all(readies)).flatMap((r) => r.workerIds)
  } catch (err) {
    killAll()
    throw err
  }
  const tell = (child: ChildProcess, message: ParentMessage) => child.send(message)

  return {
    workerIds,
    async report() {
      const reports = await Promise.all(
        children.map((child) => {
          const reply = waitFor(child, 'report', REPORT_TIMEOUT_MS)
          tell(child, { type: 'report' })
          return reply
        }),
      )
      const sum = { runs: 0, busyMs: 0, aborted: 0, abortedBusyMs: 0, cpuMs: 0 }
      for (const r of reports) {
        sum.runs += r.runs
        sum.busyMs += r.busyMs
        sum.aborted += r.aborted
        sum.abortedBusyMs += r.abortedBusyMs
        sum.cpuMs += r.cpuMs
      }
      return sum
    },
    async close() {
      await Promise.all(
        children.map(async (child) => {
          if (child.exitCode !== null || child.signalCode !== null) return
          const exited = new Promise((resolve) => child.once('exit', resolve))
          tell(child, { type: 'close' })
          const timer = setTimeout(() => child.kill('SIGKILL'), CLOSE_TIMEOUT_MS)
          await exited
          clearTimeout(timer)
        }),
      )
      process.off('exit', killAll)
    },
  }
}
