/**
 * A Hedgeyard consumer process, as deployed: `startWorkers` (the code path of `hedgeyard
 * worker`) with `count` workers, each with its own stream, concurrency and queue capacity. With
 * the `stream` work (suite f) the handler is an async generator that yields `req.chunks` chunks
 * as fast as it is let, each stamped with the time of its `yield`.
 *
 *   node dist/runners/hedgeyard-worker.js '<json HedgeyardWorkerConfig>'
 *
 * Messages: `ready` once registered; `mark` resets the counters and the CPU baseline (`marked`);
 * `report` (after `atLeast` jobs since the mark) answers with a {@link WorkerReport}; `stop`
 * drains the workers and exits. A job counts as processed when its handler returns.
 *
 * With `pools` (the cells of a logical pool, docs/scaling.md) it starts `count` workers in each
 * pool, named `<idPrefix>c<i>-<n>`; only the first pool's workers can be slow.
 */
import { performance } from 'node:perf_hooks'
import { type JobContext, startWorkers } from 'hedgeyard'
import {
  chunkPacer,
  isTimed,
  jobWork,
  monotonicUs,
  type StreamChunkData,
  type StreamRequest,
  type WorkSpec,
} from './job-work.js'
import { countTraffic, emit, fail, readConfig } from './runner-io.js'
import { serveWorker, WorkerTally } from './worker-report.js'

/** What the parent passes as the first argument (JSON). */
export interface HedgeyardWorkerConfig {
  redis: string
  pool: string
  idPrefix: string
  count: number
  concurrency: number
  queueCapacity: number
  /** Jobs read ahead of free slots; the library's default when absent. */
  prefetch?: number
  /** How long results (and a stream's chunks) are kept; the library's default when absent. */
  resultTtlMs?: number
  work: WorkSpec
  /** Pools to start `count` workers in, instead of `pool` alone. */
  pools?: string[]
  countCommands?: boolean
}

async function main(): Promise<void> {
  const config = readConfig<HedgeyardWorkerConfig>()
  const tally = new WorkerTally(countTraffic(config.countCommands === true))
  const pools = config.pools ?? [config.pool]
  const prefixOf = (c: number) => (config.pools === undefined ? config.idPrefix : `${config.idPrefix}c${c}`)
  const works = new Map<string, () => Promise<void> | undefined>()
  pools.forEach((_, c) => {
    const work = c === 0 || config.work.kind !== 'service' ? config.work : { ...config.work, slowCount: 0 }
    for (let i = 1; i <= config.count; i++) works.set(`${prefixOf(c)}-${i}`, jobWork(work, i))
  })
  const timed = isTimed(config.work)

  // A timed job returns how long its body took (ms), so the producer can tell it from the rest.
  const done = (workerId: string, startedMs: number): number | null => {
    const elapsed = timed ? performance.now() - startedMs : null
    if (elapsed !== null) tally.worked(workerId, elapsed)
    tally.done(workerId)
    return elapsed
  }
  const handler = (_req: unknown, ctx: JobContext) => {
    const startedMs = timed ? performance.now() : 0
    const pending = works.get(ctx.workerId)?.()
    if (pending === undefined) return done(ctx.workerId, startedMs)
    return pending.then(() => done(ctx.workerId, startedMs))
  }
  const pacer = chunkPacer(config.work)
  async function* streamHandler(req: StreamRequest, ctx: JobContext): AsyncGenerator<StreamChunkData> {
    const wait = pacer?.()
    for (let i = 1; i <= req.chunks; i++) {
      if (wait) await wait(i)
      yield { i, t: monotonicUs() }
    }
    tally.done(ctx.workerId)
    return { chunks: req.chunks }
  }

  const groups = await Promise.all(
    pools.map((pool, c) =>
      startWorkers({
        redis: config.redis,
        pool,
        idPrefix: prefixOf(c),
        count: config.count,
        concurrency: config.concurrency,
        queueCapacity: config.queueCapacity,
        ...(config.prefetch === undefined ? {} : { prefetch: config.prefetch }),
        ...(config.resultTtlMs === undefined ? {} : { resultTtlMs: config.resultTtlMs }),
        handler: config.work.kind === 'stream' ? streamHandler : handler,
      }),
    ),
  )
  emit({ type: 'ready', workerIds: groups.flatMap((g) => [...g.workerIds]) })

  serveWorker({
    name: 'hedgeyard-worker',
    tally,
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await Promise.all(groups.map((g) => g.close()))
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
