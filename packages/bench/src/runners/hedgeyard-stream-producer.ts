/**
 * Suite f's Hedgeyard producer process: one `Dispatcher` that opens every stream of a phase at
 * once with `dispatcher.stream(req)` and reads each with `for await`, then awaits its `result`.
 *
 *   node dist/runners/hedgeyard-stream-producer.js '<json HedgeyardStreamProducerConfig>'
 *
 * Messages: see stream-load.ts (`warmup`, `go`, `stop`).
 */
import { Dispatcher } from 'hedgeyard'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
import {
  type StreamChunkData,
  type StreamClient,
  type StreamLoad,
  type StreamRequest,
  serveStreamProducer,
} from './stream-load.js'

/** What the parent passes as the first argument (JSON). */
export interface HedgeyardStreamProducerConfig {
  redis: string
  pool: string
  load: StreamLoad
  timeoutMs: number
}

async function main(): Promise<void> {
  const config = readConfig<HedgeyardStreamProducerConfig>()
  const traffic = countRedisTraffic(config.redis)
  const dispatcher = new Dispatcher<StreamRequest, { chunks: number }>({
    redis: config.redis,
    pool: config.pool,
    timeoutMs: config.timeoutMs,
  })
  const client: StreamClient = {
    async openAll(first, count, chunks, tally) {
      const follow = async (n: number) => {
        const stream = dispatcher.stream<StreamChunkData>({ n, chunks })
        tally.opened(n)
        for await (const { data } of stream) tally.chunk(n, data)
        await stream.result
        tally.ended(n)
      }
      const all = new Array<Promise<void>>(count)
      for (let i = 0; i < count; i++) all[i] = follow(first + i)
      await Promise.all(all)
    },
  }
  // The first submit connects; the warm-up must not pay for that.
  await dispatcher.submit({ n: -1, chunks: 0 })
  emit({ type: 'ready' })

  serveStreamProducer({
    name: 'hedgeyard-stream-producer',
    load: config.load,
    client,
    traffic,
    stop: () => dispatcher.close(),
  })
}

main().catch(fail)
