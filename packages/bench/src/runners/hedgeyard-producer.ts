/**
 * A Hedgeyard producer process: one `Dispatcher`, running a {@link Workload}.
 *
 *   node dist/runners/hedgeyard-producer.js '<json HedgeyardProducerConfig>'
 *
 * Messages: `ready` once connected; `warmup` runs the warm-up phase (`warmed`); `go` runs the
 * measured phase and answers `done` with its timings, latencies, CPU time and the commands it
 * sent; `stop` closes the dispatcher and exits. Bulk submits use `onSaturated: 'wait'`.
 */
import { Dispatcher } from 'hedgeyard'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
import { type ProducerClient, serveProducer, type Workload } from './workload.js'

/** What the parent passes as the first argument (JSON). */
export interface HedgeyardProducerConfig {
  redis: string
  pool: string
  workload: Workload
  timeoutMs: number
}

async function main(): Promise<void> {
  const config = readConfig<HedgeyardProducerConfig>()
  const traffic = countRedisTraffic(config.redis)
  const dispatcher = new Dispatcher<{ n: number }, unknown>({
    redis: config.redis,
    pool: config.pool,
    timeoutMs: config.timeoutMs,
  })
  const bulkOptions = { onSaturated: 'wait' } as const
  const client: ProducerClient = {
    submitAndWait: (n) => dispatcher.submit({ n }),
    async submitBulk(first, count) {
      const all = new Array<Promise<unknown>>(count)
      for (let i = 0; i < count; i++) all[i] = dispatcher.submit({ n: first + i }, bulkOptions)
      await Promise.all(all)
    },
  }
  // The first submit connects; the warm-up must not pay for that.
  await dispatcher.submit({ n: -1 })
  emit({ type: 'ready' })

  serveProducer({
    name: 'hedgeyard-producer',
    workload: config.workload,
    client,
    traffic,
    stop: () => dispatcher.close(),
    extra: () => ({ stats: dispatcher.stats() }),
  })
}

main().catch(fail)
