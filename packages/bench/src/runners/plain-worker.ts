/**
 * The consumer process of the plain-commands baseline: a job done with the fewest plain Redis
 * commands and no library, to show what the machine and Redis alone cost in the latency suites.
 * It reads jobs with `XREADGROUP` (as many as it has free slots, blocking), runs the same job
 * body as the other systems, and answers each with one pipelined write: `PUBLISH` of the result
 * to the producer's channel, `XACK` and `XDEL`. No fencing, retries, load counters or leases:
 * what a dispatcher adds to that is what it costs.
 *
 *   node dist/runners/plain-worker.js '<json PlainWorkerConfig>'
 *
 * Messages as for the Switchyard worker: `ready`, `mark` (`marked`), `report`, `stop`.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { jobWork, type WorkSpec } from './job-work.js'
import { plainResultChannel } from './plain-keys.js'
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
export interface PlainWorkerConfig {
  redis: string
  /** The stream jobs are added to; results go to the channel `<stream>:results`. */
  stream: string
  concurrency: number
  work: WorkSpec
}

const PLAIN_GROUP = 'g'
const CONSUMER = 'plain-worker'

async function main(): Promise<void> {
  const config = readConfig<PlainWorkerConfig>()
  const traffic = countRedisTraffic(config.redis)
  const reader = new Redis(config.redis, { maxRetriesPerRequest: null })
  const writer = new Redis(config.redis)
  const channel = plainResultChannel(config.stream)
  await writer.xgroup('CREATE', config.stream, PLAIN_GROUP, '$', 'MKSTREAM')
  const work = jobWork(config.work, 1)
  const isTimed = config.work.kind !== 'noop'
  const waiter = new Waiter()
  let running = 0
  let processed = 0
  let lastDoneNs = '0'
  let busyMs = 0
  let workSamples: number[] = []
  let cpuStart = process.cpuUsage()
  let isStopped = false

  const finish = (entryId: string, n: string, startedMs: number) => {
    let elapsed: number | null = null
    if (isTimed) {
      elapsed = performance.now() - startedMs
      busyMs += elapsed
      workSamples.push(elapsed)
    }
    writer
      .pipeline()
      .publish(channel, `${n} ${elapsed}`)
      .xack(config.stream, PLAIN_GROUP, entryId)
      .xdel(config.stream, entryId)
      .exec()
      .then(() => {
        running--
        processed++
        lastDoneNs = nowNs()
        waiter.notify()
      }, fail)
  }
  const run = (entryId: string, fields: string[]) => {
    running++
    const n = fields[1] as string
    const startedMs = isTimed ? performance.now() : 0
    const pending = work()
    if (pending === undefined) finish(entryId, n, startedMs)
    else void pending.then(() => finish(entryId, n, startedMs))
  }

  const loop = async () => {
    while (!isStopped) {
      await waiter.until(() => running < config.concurrency || isStopped)
      if (isStopped) break
      const reply = (await reader.xreadgroup(
        'GROUP',
        PLAIN_GROUP,
        CONSUMER,
        'COUNT',
        config.concurrency - running,
        'BLOCK',
        1_000,
        'STREAMS',
        config.stream,
        '>',
      )) as [string, [string, string[]][]][] | null
      for (const [, entries] of reply ?? []) for (const [entryId, fields] of entries) run(entryId, fields)
    }
  }
  void loop().catch(fail)
  emit({ type: 'ready', workerIds: [CONSUMER] })

  serveCommands(async ({ cmd, atLeast }) => {
    if (cmd === 'mark') {
      processed = 0
      lastDoneNs = '0'
      busyMs = 0
      workSamples = []
      traffic.take()
      cpuStart = process.cpuUsage()
      emit({ type: 'marked' })
    } else if (cmd === 'report') {
      await waiter.until(() => processed >= (atLeast ?? 0))
      const report: WorkerReport = {
        type: 'report',
        processed,
        cpuUs: cpuSinceUs(cpuStart),
        lastDoneNs,
        perWorker: { [CONSUMER]: processed },
        busyMsPerWorker: isTimed ? { [CONSUMER]: busyMs } : {},
        workMs: workPercentiles(workSamples),
        ...traffic.take(),
      }
      emit(report)
    } else if (cmd === 'stop') {
      isStopped = true
      reader.disconnect()
      writer.disconnect()
      process.exit(0)
    } else {
      throw new Error(`plain-worker: unknown command '${cmd}'`)
    }
  })
}

main().catch(fail)
