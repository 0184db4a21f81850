/**
 * The consumer process of the plain-commands baseline: a minimal streams job with no library, to
 * show in the latency suites what the machine and Redis cost a request before any library work.
 * It reads jobs with `XREADGROUP` (as many as it has free slots, blocking), runs the same job
 * body as the other systems, and answers each with one pipelined write: `PUBLISH` of the result
 * to the producer's channel, `XACK` and `XDEL`. No fencing, retries, load counters or leases.
 * A job counts as processed when its body is done, as for the Switchyard worker.
 *
 *   node dist/runners/plain-worker.js '<json PlainWorkerConfig>'
 *
 * Messages as for the Switchyard worker: `ready`, `mark` (`marked`), `report`, `stop`.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { jobWork, type WorkSpec } from './job-work.js'
import { plainResultChannel } from './plain-keys.js'
import { countRedisTraffic, emit, fail, readConfig, Waiter } from './runner-io.js'
import { serveWorker, WorkerTally } from './worker-report.js'

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
  const tally = new WorkerTally(countRedisTraffic(config.redis))
  const reader = new Redis(config.redis, { maxRetriesPerRequest: null })
  const writer = new Redis(config.redis)
  const channel = plainResultChannel(config.stream)
  await writer.xgroup('CREATE', config.stream, PLAIN_GROUP, '$', 'MKSTREAM')
  const work = jobWork(config.work, 1)
  const isTimed = config.work.kind !== 'noop'
  const room = new Waiter()
  let running = 0

  const finish = (entryId: string, n: string, startedMs: number) => {
    let elapsed: number | null = null
    if (isTimed) {
      elapsed = performance.now() - startedMs
      tally.worked(CONSUMER, elapsed)
    }
    tally.done(CONSUMER)
    writer
      .pipeline()
      .publish(channel, `${n} ${elapsed}`)
      .xack(config.stream, PLAIN_GROUP, entryId)
      .xdel(config.stream, entryId)
      .exec()
      .then(() => {
        running--
        room.notify()
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

  // Reads as many entries as there are free slots, blocking until some come.
  const loop = async () => {
    for (;;) {
      await room.until(() => running < config.concurrency)
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

  serveWorker({
    name: 'plain-worker',
    tally,
    stop() {
      reader.disconnect()
      writer.disconnect()
    },
  })
}

main().catch(fail)
