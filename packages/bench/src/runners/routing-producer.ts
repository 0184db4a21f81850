/**
 * The producer of the routing-quality suite: Poisson arrivals at a fixed mean rate, each job
 * routed by one policy, latency measured from its scheduled arrival to its result.
 *
 *   node dist/runners/routing-producer.js '<json RoutingProducerConfig>'
 *
 * Policies:
 * - `least-loaded`, `round-robin`, `random`: the library's own dispatch script, called the way
 *   its DispatchBatcher calls it (one call per event-loop turn), results read from the pub/sub
 *   channel the complete script publishes on. Round-robin and random choose the worker in the
 *   benchmark and force it by excluding every other worker, so all three policies pay for the
 *   same script, the same stream entry and the same result path: only the choice differs.
 * - `dispatcher`: least-loaded through the public `Dispatcher` (a check that the script path above
 *   is the product's); with `sessions`, every request carries a session (the affinity workload);
 *   with `cells`, a `CellDispatcher` over that many cells of `pool` (docs/scaling.md).
 *
 * Same messages as hedgeyard-producer.ts; `done` also carries the jobs each worker was given
 * (script policies) and the dispatcher's counters.
 */

import { CellDispatcher, Dispatcher, type DispatcherStats, poolKeys } from 'hedgeyard'
import { parseDispatchReply, resultChannel } from 'hedgeyard/internal'
import { Redis } from 'ioredis'
import { connectWithScripts, type DispatchJob, dispatchArgs } from '../library-scripts.js'
import { seededRandom } from '../stats.js'
import { countTraffic, cpuSinceUs, emit, fail, nowNs, readConfig, serveCommands } from './runner-io.js'
import { openLoop, poissonOffsetsMs } from './workload.js'

/** How jobs are routed. */
export type RoutingPolicy = 'least-loaded' | 'round-robin' | 'random' | 'dispatcher'

/** Sessions of the affinity workload: a few hot ones take `hotShare` of all requests. */
export interface SessionMix {
  /** Prefix of the session names, so that runs never share a binding. */
  prefix: string
  cold: number
  hot: number
  hotShare: number
}

/** What the parent passes as the first argument (JSON). */
export interface RoutingProducerConfig {
  redis: string
  pool: string
  workerIds: string[]
  policy: RoutingPolicy
  ratePerSecond: number
  jobs: number
  warmupJobs: number
  seed: number
  timeoutMs: number
  sessions?: SessionMix
  cells?: number
  countCommands?: boolean
}

interface Router {
  send(n: number, session: string): Promise<void>
  assigned: Map<string, number>
  stats(): DispatcherStats | undefined
  close(): Promise<void>
}

/** The dispatch script called directly; `choose` picks the worker, or undefined for least-loaded. */
async function scriptRouter(
  config: RoutingProducerConfig,
  choose: (() => string) | undefined,
): Promise<Router> {
  const conn = await connectWithScripts(config.redis)
  const sub = new Redis(config.redis, { lazyConnect: true })
  sub.on('error', () => {})
  const keys = poolKeys('hy', config.pool)
  const producerId = `bench-routing-${process.pid}`
  const waiting = new Map<string, { resolve: () => void; reject: (e: Error) => void }>()
  sub.on('message', (_channel: string, message: string) => {
    for (const line of message.split('\n')) {
      const space = line.indexOf(' ')
      const w = waiting.get(line.slice(0, space))
      if (w === undefined) continue
      waiting.delete(line.slice(0, space))
      if (line.startsWith('{"ok":true', space + 1)) w.resolve()
      else w.reject(new Error(`job failed: ${line.slice(space + 1, space + 200)}`))
    }
  })
  await sub.connect()
  await sub.subscribe(resultChannel(keys, producerId))

  const assigned = new Map<string, number>()
  const random = seededRandom(config.seed + 7)
  let batch: DispatchJob[] = []
  const flush = () => {
    const jobs = batch
    batch = []
    const call = {
      producerId,
      seed: Math.floor(random() * 2 ** 31),
      affinityTtlMs: 30_000,
      timeoutMs: config.timeoutMs,
    }
    const { args, records } = dispatchArgs(keys, call, jobs)
    conn.dispatch(...args).then(
      (reply) => {
        let outcomes: ReturnType<typeof parseDispatchReply>
        try {
          outcomes = parseDispatchReply(reply, records, jobs.length)
        } catch (err) {
          for (const job of jobs) waiting.get(job.jobId)?.reject(err as Error)
          return
        }
        jobs.forEach((job, i) => {
          const outcome = outcomes[i]
          if (outcome?.status !== 'queued') {
            waiting.get(job.jobId)?.reject(new Error(`dispatch answered ${outcome?.status}`))
            waiting.delete(job.jobId)
          } else assigned.set(outcome.workerId, (assigned.get(outcome.workerId) ?? 0) + 1)
        })
      },
      (err: unknown) => {
        for (const job of jobs) waiting.get(job.jobId)?.reject(err as Error)
      },
    )
  }
  return {
    send(n, session) {
      const jobId = `${producerId}-${n}`
      const chosen = choose?.()
      const excluded = chosen === undefined ? '' : config.workerIds.filter((w) => w !== chosen).join(',')
      if (batch.length === 0) setImmediate(flush)
      batch.push({ jobId, session, payload: '{"n":0}', excluded })
      return new Promise<void>((resolve, reject) => waiting.set(jobId, { resolve, reject }))
    },
    assigned,
    stats: () => undefined,
    async close() {
      conn.disconnect()
      sub.disconnect()
    },
  }
}

function dispatcherRouter(config: RoutingProducerConfig): Router {
  const options = { redis: config.redis, pool: config.pool, timeoutMs: config.timeoutMs }
  const dispatcher =
    config.cells === undefined
      ? new Dispatcher(options)
      : new CellDispatcher({ ...options, cells: config.cells })
  return {
    async send(n, session) {
      await dispatcher.submit({ n }, session === '' ? {} : { session })
    },
    assigned: new Map(),
    stats: () => dispatcher.stats(),
    close: () => dispatcher.close(),
  }
}

async function createRouter(config: RoutingProducerConfig): Promise<Router> {
  const ids = [...config.workerIds].sort()
  switch (config.policy) {
    case 'least-loaded':
      return scriptRouter(config, undefined)
    case 'round-robin': {
      let next = 0
      return scriptRouter(config, () => ids[next++ % ids.length] as string)
    }
    case 'random': {
      const random = seededRandom(config.seed + 11)
      return scriptRouter(config, () => ids[Math.floor(random() * ids.length)] as string)
    }
    case 'dispatcher':
      return dispatcherRouter(config)
  }
}

/** Seeded session names of a mix; '' for every job when there is no mix. */
function sessionPicker(mix: SessionMix | undefined, seed: number): () => string {
  if (mix === undefined) return () => ''
  const random = seededRandom(seed + 3)
  return () =>
    random() < mix.hotShare
      ? `${mix.prefix}hot-${Math.floor(random() * mix.hot)}`
      : `${mix.prefix}cold-${Math.floor(random() * mix.cold)}`
}

async function main(): Promise<void> {
  const config = readConfig<RoutingProducerConfig>()
  const traffic = countTraffic(config.countCommands === true)
  const router = await createRouter(config)
  const nextSession = sessionPicker(config.sessions, config.seed)
  const seen = new Set<string>()
  let nextJob = 0
  const phase = async (jobs: number, seed: number) => {
    const sessions = Array.from({ length: jobs }, nextSession)
    let fresh = 0
    for (const s of sessions) {
      if (s !== '' && !seen.has(s)) {
        seen.add(s)
        fresh++
      }
    }
    const first = nextJob
    nextJob += jobs
    const offsets = poissonOffsetsMs(jobs, config.ratePerSecond, seed)
    const result = await openLoop(offsets, (i) => router.send(first + i, sessions[i] as string))
    return { ...result, freshSessions: fresh, distinctSessions: new Set(sessions).size }
  }
  emit({ type: 'ready' })

  serveCommands(async ({ cmd }) => {
    if (cmd === 'warmup') {
      await phase(config.warmupJobs, config.seed + 1)
      emit({ type: 'warmed', jobs: config.warmupJobs })
    } else if (cmd === 'go') {
      router.assigned.clear()
      const before = router.stats()
      traffic.take()
      const cpuStart = process.cpuUsage()
      const startNs = nowNs()
      const result = await phase(config.jobs, config.seed)
      const endNs = nowNs()
      const after = router.stats()
      emit({
        type: 'done',
        jobs: config.jobs,
        startNs,
        endNs,
        cpuUs: cpuSinceUs(cpuStart),
        ...traffic.take(),
        latenciesUs: result.latenciesUs,
        sendLagUs: result.sendLagUs,
        assigned: Object.fromEntries(router.assigned),
        freshSessions: result.freshSessions,
        distinctSessions: result.distinctSessions,
        affinityHits: (after?.affinityHits ?? 0) - (before?.affinityHits ?? 0),
        affinityMisses: (after?.affinityMisses ?? 0) - (before?.affinityMisses ?? 0),
      })
    } else if (cmd === 'stop') {
      await router.close()
      process.exit(0)
    } else {
      throw new Error(`routing-producer: unknown command '${cmd}'`)
    }
  })
}

main().catch(fail)
