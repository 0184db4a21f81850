import { Dispatcher, inspectPool, startWorkers, type WorkerGroup, type WorkerMetrics } from 'hedgeyard'
import { cleanupPool, client, gate, redisUrl } from './helpers.js'

/** A pool for the tests of the operator views, with workers that can be made to cool down or hold jobs. */
export interface WatchedPool {
  /** Starts `count` workers `<idPrefix>-<n>`. */
  start(idPrefix: string, count: number): Promise<WorkerGroup>
  dispatcher: Dispatcher
  /** Submits under way: the cleanup releases and awaits them. */
  jobs: Promise<unknown>[]
  /** A worker as inspect reads it now. */
  worker(workerId: string): Promise<WorkerMetrics | undefined>
  /** Lets the held jobs finish (the cleanup does too). */
  release(): void
}

/**
 * A pool whose workers with ids starting `<coolPrefix>` answer like an upstream out of quota (429,
 * retry in 2 min), so they cool down; a request `{ hold: true }` waits until `release()` or the
 * cleanup, so a worker can be caught running it; `{ fail: true }` throws. Registers its cleanup.
 */
export function watchedPool(options: {
  pool: string
  coolPrefix: string
  concurrency: number
  queueCapacity: number
  cleanups: (() => Promise<unknown>)[]
}): WatchedPool {
  const { pool, coolPrefix } = options
  const release = gate()
  const handler = async (req: { hold?: boolean; fail?: boolean } | null, ctx: { workerId: string }) => {
    if (ctx.workerId.startsWith(coolPrefix)) {
      throw Object.assign(new Error('quota exceeded'), { status: 429, retryAfterMs: 120_000 })
    }
    if (req?.hold) await release.wait
    if (req?.fail) throw new Error('failed on purpose')
    return { ok: true }
  }
  const groups: WorkerGroup[] = []
  const dispatcher = new Dispatcher({ redis: redisUrl(), pool, maxAttempts: 1 })
  const jobs: Promise<unknown>[] = []
  options.cleanups.push(async () => {
    release.open()
    await Promise.allSettled(jobs)
    await dispatcher.close()
    await Promise.all(groups.map((g) => g.close()))
    const c = client()
    await cleanupPool(c, pool)
    c.disconnect()
  })
  return {
    async start(idPrefix, count) {
      const group = await startWorkers({
        redis: redisUrl(),
        pool,
        handler,
        idPrefix,
        count,
        concurrency: options.concurrency,
        queueCapacity: options.queueCapacity,
      })
      groups.push(group)
      return group
    },
    dispatcher,
    jobs,
    release: () => release.open(),
    worker: async (workerId) =>
      (await inspectPool({ redis: redisUrl(), pool })).find((w) => w.workerId === workerId),
  }
}
