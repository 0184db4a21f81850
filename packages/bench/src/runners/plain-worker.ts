/**
 * The consumer process of the plain-commands baselines, to show in the latency suites what the
 * machine and Redis cost a request before any library work. With the 'stream' transport, a
 * minimal streams job with no library: it reads jobs with `XREADGROUP` (as many as it has free
 * slots, blocking), runs the same job body as the other systems, and answers each with one
 * pipelined write: `PUBLISH` of the result to the producer's channel, `XACK` and `XDEL`. No
 * fencing, retries, load counters or leases. With 'pubsub', a bare round trip: it listens on the
 * jobs channel (a job that finds no free slot waits here, in memory) and answers with `PUBLISH`.
 * A job counts as processed when its body is done, as for the Hedgeyard worker.
 *
 *   node dist/runners/plain-worker.js '<json PlainWorkerConfig>'
 *
 * Messages as for the Hedgeyard worker: `ready`, `mark` (`marked`), `report`, `stop`.
 */
import { performance } from 'node:perf_hooks'
import { Redis } from 'ioredis'
import { jobWork, type WorkSpec } from './job-work.js'
import { type PlainTransport, plainJobChannel, plainResultChannel } from './plain-keys.js'
import { countTraffic, emit, fail, readConfig, Waiter } from './runner-io.js'
import { serveWorker, WorkerTally } from './worker-report.js'

/** What the parent passes as the first argument (JSON). */
export interface PlainWorkerConfig {
  redis: string
  /** The stream jobs are added to; results go to the channel `<stream>:results`. */
  stream: string
  transport: PlainTransport
  concurrency: number
  work: WorkSpec
  countCommands?: boolean
}

const PLAIN_GROUP = 'g'
const CONSUMER = 'plain-worker'

async function main(): Promise<void> {
  const config = readConfig<PlainWorkerConfig>()
  const tally = new WorkerTally(countTraffic(config.countCommands === true))
  const reader = new Redis(config.redis, { maxRetriesPerRequest: null })
  const writer = new Redis(config.redis)
  const channel = plainResultChannel(config.stream)
  const isStream = config.transport === 'stream'
  if (isStream) await writer.xgroup('CREATE', config.stream, PLAIN_GROUP, '$', 'MKSTREAM')
  const work = jobWork(config.work, 1)
  const isTimed = config.work.kind !== 'noop'
  const room = new Waiter()
  let running = 0
  /** 'pubsub': jobs that came while every slot was busy. */
  const held: string[] = []

  const finish = (entryId: string, n: string, startedMs: number) => {
    let elapsed: number | null = null
    if (isTimed) {
      elapsed = performance.now() - startedMs
      tally.worked(CONSUMER, elapsed)
    }
    tally.done(CONSUMER)
    const message = `${n} ${elapsed}`
    const written = isStream
      ? writer
          .pipeline()
          .publish(channel, message)
          .xack(config.stream, PLAIN_GROUP, entryId)
          .xdel(config.stream, entryId)
          .exec()
      : writer.publish(channel, message)
    written.then(() => {
      running--
      const next = held.shift()
      if (next !== undefined) run('', next)
      room.notify()
    }, fail)
  }
  const run = (entryId: string, n: string) => {
    running++
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
      for (const [, entries] of reply ?? [])
        for (const [entryId, fields] of entries) run(entryId, fields[1] as string)
    }
  }
  // The bare round trip: every published job is taken at once, and waits here for a free slot.
  const listen = async () => {
    reader.on('message', (_channel: string, n: string) => {
      if (running < config.concurrency) run('', n)
      else held.push(n)
    })
    await reader.subscribe(plainJobChannel(config.stream))
  }
  if (isStream) void loop().catch(fail)
  else await listen()
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
