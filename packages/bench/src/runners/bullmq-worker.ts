/**
 * A BullMQ consumer process: one `Worker` with the given concurrency, set up as BullMQ's docs
 * recommend (a connection with `maxRetriesPerRequest: null`, finished jobs removed by the worker:
 * `removeOnComplete: { count }` and `removeOnFail: { count }`).
 *
 *   node dist/runners/bullmq-worker.js '<json BullmqWorkerConfig>'
 *
 * Same messages as switchyard-worker.ts; a job counts as processed at the worker's `completed`
 * event, which BullMQ emits once the job is stored as completed.
 */
import { performance } from 'node:perf_hooks'
import { Worker } from 'bullmq'
import { jobWork, type WorkSpec } from './job-work.js'
import {
  countRedisTraffic,
  cpuSinceUs,
  emit,
  fail,
  nowNs,
  readConfig,
  serveCommands,
  Waiter,
} from './runner-io.js'
import { type WorkerReport, workPercentiles } from './worker-report.js'

/** What the parent passes as the first argument (JSON). */
export interface BullmqWorkerConfig {
  redis: string
  queue: string
  concurrency: number
  /** Completed jobs BullMQ keeps: 0 removes them as they finish; waitUntilFinished needs a few. */
  keepCompleted: number
  keepFailed: number
  work: WorkSpec
}

async function main(): Promise<void> {
  const config = readConfig<BullmqWorkerConfig>()
  const traffic = countRedisTraffic(config.redis)
  const work = jobWork(config.work, 1)
  const url = new URL(config.redis)
  const waiter = new Waiter()
  let processed = 0
  let failed = 0
  let lastDoneNs = '0'
  let cpuStart = process.cpuUsage()
  let workSamples: number[] = []
  const isTimed = config.work.kind !== 'noop'

  const worker = new Worker(
    config.queue,
    async () => {
      const startedMs = isTimed ? performance.now() : 0
      await work()
      if (!isTimed) return null
      const elapsed = performance.now() - startedMs
      workSamples.push(elapsed)
      return elapsed
    },
    {
      connection: { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null },
      concurrency: config.concurrency,
      removeOnComplete: { count: config.keepCompleted },
      removeOnFail: { count: config.keepFailed },
    },
  )
  worker.on('completed', () => {
    processed++
    lastDoneNs = nowNs()
    waiter.notify()
  })
  worker.on('failed', () => {
    failed++
  })
  worker.on('error', (err) => {
    process.stderr.write(`bullmq-worker: ${err.message}\n`)
  })
  await worker.waitUntilReady()
  emit({ type: 'ready', workerIds: [worker.id] })

  serveCommands(async ({ cmd, atLeast }) => {
    if (cmd === 'mark') {
      processed = 0
      lastDoneNs = '0'
      workSamples = []
      traffic.take()
      cpuStart = process.cpuUsage()
      emit({ type: 'marked' })
    } else if (cmd === 'report') {
      await waiter.until(() => processed >= (atLeast ?? 0))
      if (failed > 0) throw new Error(`bullmq-worker: ${failed} job(s) failed`)
      const report: WorkerReport = {
        type: 'report',
        processed,
        cpuUs: cpuSinceUs(cpuStart),
        lastDoneNs,
        perWorker: { [worker.id]: processed },
        busyMsPerWorker: {},
        workMs: workPercentiles(workSamples),
        ...traffic.take(),
      }
      emit(report)
    } else if (cmd === 'stop') {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await worker.close()
      clearTimeout(timer)
      process.exit(0)
    } else {
      throw new Error(`bullmq-worker: unknown command '${cmd}'`)
    }
  })
}

main().catch(fail)
