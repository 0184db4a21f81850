/**
 * A Hedgeyard consumer process, as deployed: `startWorkers` (the code path of `hedgeyard
 * worker`) with `count` workers, each with its own stream, concurrency and queue capacity.
 *
 *   node dist/runners/hedgeyard-worker.js '<json HedgeyardWorkerConfig>'
 *
 * Messages: `ready` once registered; `mark` resets the counters and the CPU baseline (`marked`);
 * `report` (after `atLeast` jobs since the mark) answers with a {@link WorkerReport}; `stop`
 * drains the workers and exits. A job counts as processed when its handler returns.
 */
import { performance } from 'node:perf_hooks'
import { type JobContext, startWorkers } from 'hedgeyard'
import { jobWork, type WorkSpec } from './job-work.js'
import { countRedisTraffic, emit, fail, readConfig } from './runner-io.js'
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
  work: WorkSpec
}

async function main(): Promise<void> {
  const config = readConfig<HedgeyardWorkerConfig>()
  const tally = new WorkerTally(countRedisTraffic(config.redis))
  const works = new Map<string, () => Promise<void> | undefined>()
  for (let i = 1; i <= config.count; i++) works.set(`${config.idPrefix}-${i}`, jobWork(config.work, i))
  const isTimed = config.work.kind !== 'noop'

  // A timed job returns how long its body took (ms), so the producer can tell it from the rest.
  const done = (workerId: string, startedMs: number): number | null => {
    let elapsed: number | null = null
    if (isTimed) {
      elapsed = performance.now() - startedMs
      tally.worked(workerId, elapsed)
    }
    tally.done(workerId)
    return elapsed
  }
  const handler = (_req: unknown, ctx: JobContext) => {
    const work = works.get(ctx.workerId)
    const startedMs = isTimed ? performance.now() : 0
    const pending = work?.()
    if (pending === undefined) return done(ctx.workerId, startedMs)
    return pending.then(() => done(ctx.workerId, startedMs))
  }

  const group = await startWorkers({
    redis: config.redis,
    pool: config.pool,
    idPrefix: config.idPrefix,
    count: config.count,
    concurrency: config.concurrency,
    queueCapacity: config.queueCapacity,
    ...(config.prefetch === undefined ? {} : { prefetch: config.prefetch }),
    handler,
  })
  emit({ type: 'ready', workerIds: [...group.workerIds] })

  serveWorker({
    name: 'hedgeyard-worker',
    tally,
    async stop() {
      const timer = setTimeout(() => process.exit(0), 5_000)
      await group.close()
      clearTimeout(timer)
    },
  })
}

main().catch(fail)
