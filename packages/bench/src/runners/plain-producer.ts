/**
 * The producer process of the plain-commands baselines (see plain-worker.ts): `XADD` of each job
 * to the stream (or, for the bare round trip, `PUBLISH` of its number to the jobs channel), and
 * one subscription to the results channel that settles the waiting request by its number. It runs
 * the same {@link Workload} code as the Hedgeyard and BullMQ producers.
 *
 *   node dist/runners/plain-producer.js '<json PlainProducerConfig>'
 *
 * Messages as for the Hedgeyard producer: `ready`, `warmup` (`warmed`), `go` (`done`), `stop`.
 */
import { Redis } from 'ioredis'
import { type PlainTransport, plainJobChannel, plainResultChannel } from './plain-keys.js'
import { countTraffic, emit, fail, readConfig } from './runner-io.js'
import { type ProducerClient, serveProducer, type Workload } from './workload.js'

/** What the parent passes as the first argument (JSON). */
export interface PlainProducerConfig {
  redis: string
  stream: string
  transport: PlainTransport
  workload: Workload
  countCommands?: boolean
}

async function main(): Promise<void> {
  const config = readConfig<PlainProducerConfig>()
  const traffic = countTraffic(config.countCommands === true)
  const conn = new Redis(config.redis)
  const sub = new Redis(config.redis)
  const waiting = new Map<number, (value: number | null) => void>()
  sub.on('message', (_channel: string, message: string) => {
    const space = message.indexOf(' ')
    const n = Number(message.slice(0, space))
    const handlerMs = message.slice(space + 1)
    const settle = waiting.get(n)
    waiting.delete(n)
    settle?.(handlerMs === 'null' ? null : Number(handlerMs))
  })
  await sub.subscribe(plainResultChannel(config.stream))
  const result = (n: number) => new Promise<number | null>((resolve) => waiting.set(n, resolve))
  const jobChannel = plainJobChannel(config.stream)
  // A job published while no worker listens is gone: fail at once rather than wait for it.
  const heard = (receivers: number) => {
    if (receivers === 0) fail(new Error(`no worker listens on ${jobChannel}: the job is lost`))
  }
  const isStream = config.transport === 'stream'
  const client: ProducerClient = {
    submitAndWait(n) {
      const done = result(n)
      if (isStream) conn.xadd(config.stream, '*', 'n', String(n)).catch(fail)
      else conn.publish(jobChannel, String(n)).then(heard, fail)
      return done
    },
    async submitBulk(first, count) {
      const all = new Array<Promise<unknown>>(count)
      const pipeline = conn.pipeline()
      for (let i = 0; i < count; i++) {
        all[i] = result(first + i)
        if (isStream) pipeline.xadd(config.stream, '*', 'n', String(first + i))
        else pipeline.publish(jobChannel, String(first + i))
      }
      for (const [err, receivers] of (await pipeline.exec()) ?? []) {
        if (err) throw err
        if (!isStream) heard(receivers as number)
      }
      await Promise.all(all)
    },
  }
  await client.submitAndWait(-1)
  emit({ type: 'ready' })

  serveProducer({
    name: 'plain-producer',
    workload: config.workload,
    client,
    traffic,
    stop() {
      conn.disconnect()
      sub.disconnect()
    },
  })
}

main().catch(fail)
