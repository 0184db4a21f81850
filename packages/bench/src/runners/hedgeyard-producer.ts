/**
 * A Hedgeyard producer process: one `Dispatcher`, running a {@link Workload}. Bulk submits use
 * `onSaturated: 'wait'`; suite f's streams are opened at once with `dispatcher.stream(req)`, each
 * read with `for await`, then its `result` awaited.
 *
 *   node dist/runners/hedgeyard-producer.js '<json HedgeyardProducerConfig>'
 *
 * Messages: `ready` once connected; `warmup` runs the warm-up phase (`warmed`); `go` runs the
 * measured phase and answers `done` with its timings, latencies, CPU time and the commands it
 * sent; `stop` closes the dispatcher and exits. With `cells`, a `CellDispatcher` over that many
 * cells of `pool` (docs/scaling.md).
 */
import { CellDispatcher, Dispatcher } from 'hedgeyard'
import type { StreamChunkData } from './job-work.js'
import { countTraffic, emit, fail, readConfig } from './runner-io.js'
import { type ProducerClient, serveProducer, type Workload } from './workload.js'

/** What the parent passes as the first argument (JSON). */
export interface HedgeyardProducerConfig {
  redis: string
  pool: string
  workload: Workload
  timeoutMs: number
  cells?: number
  countCommands?: boolean
}

async function main(): Promise<void> {
  const config = readConfig<HedgeyardProducerConfig>()
  const traffic = countTraffic(config.countCommands === true)
  const options = { redis: config.redis, pool: config.pool, timeoutMs: config.timeoutMs }
  const dispatcher =
    config.cells === undefined
      ? new Dispatcher(options)
      : new CellDispatcher({ ...options, cells: config.cells })
  const client: ProducerClient = {
    submitAndWait: (n) => dispatcher.submit({ n }),
    async submitBulk(first, count) {
      const all = new Array<Promise<unknown>>(count)
      for (let i = 0; i < count; i++) all[i] = dispatcher.submit({ n: first + i }, { onSaturated: 'wait' })
      await Promise.all(all)
    },
    async openStreams(first, count, chunks, tally) {
      const follow = async (n: number) => {
        const stream = dispatcher.stream<StreamChunkData>({ n, chunks })
        tally.opened(n)
        for await (const { data } of stream) tally.chunk(n, data)
        await stream.result
        tally.ended(n)
      }
      await Promise.all(Array.from({ length: count }, (_, i) => follow(first + i)))
    },
  }
  // The first submit connects; the warm-up must not pay for that.
  await dispatcher.submit({ n: -1, chunks: 0 })
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
