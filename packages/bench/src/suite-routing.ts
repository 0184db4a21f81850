/**
 * Suite e, routing quality. A pool of 8 workers (one process, concurrency 2 each) whose jobs
 * sleep for a seeded service time (2 ms + an exponential of mean 8 ms), one worker 3x slower
 * than the others; Poisson arrivals at 70% of the pool's capacity. Least-loaded (the dispatch
 * script, and the public Dispatcher) against round-robin and random (see
 * runners/routing-producer.ts for how they are forced honestly): mean and p99 latency.
 *
 * Then affinity on a pool of 8 equal workers at the same utilisation: every request carries a
 * session, 3 hot sessions take 30% of the requests and 500 others share the rest. Hit rate
 * (Dispatcher.stats()) against the best possible (every request but a session's first), and the
 * spread of load (max / mean jobs per worker) against the same load without sessions.
 *
 * Then a mixed pool: one worker process of concurrency 8 and one of concurrency 1, and a batch of
 * 16 jobs of 1 s submitted at once through the Dispatcher. Placed by jobs held, they split 8 / 8
 * and the small worker runs until 8 s; placed by utilisation, the big worker takes 14 and the
 * batch ends at 2 s. The makespan (first submit to last result) and the split are reported.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { Dispatcher, openPoolView } from 'hedgeyard'
import { cdfPoints, type LatencySummary, summarize } from './latency.js'
import {
  type BenchContext,
  describeConditions,
  measureSteadily,
  measureWith,
  type RunMeasurement,
} from './measure-run.js'
import { RunnerProcess } from './runner-process.js'
import type { HedgeyardWorkerConfig } from './runners/hedgeyard-worker.js'
import { meanServiceMs, type WorkSpec } from './runners/job-work.js'
import type { RoutingPolicy, RoutingProducerConfig, SessionMix } from './runners/routing-producer.js'
import { type Spread, spread } from './stats.js'

export const ROUTING_DEFAULTS = Object.freeze({
  workers: 8,
  concurrency: 2,
  minMs: 2,
  meanExtraMs: 8,
  slowFactor: 3,
  slowCount: 1,
  utilisation: 0.7,
  jobs: 3_000,
  warmupJobs: 300,
  seed: 20_240_601,
  sessions: Object.freeze({ cold: 500, hot: 3, hotShare: 0.3 }),
})
const QUICK = Object.freeze({ jobs: 150, warmupJobs: 30 })

export const MIXED_DEFAULTS = Object.freeze({
  bigConcurrency: 8,
  smallConcurrency: 1,
  jobs: 16,
  jobMs: 1_000,
})
const MIXED_QUICK = Object.freeze({ jobMs: 200 })

const POLICIES: readonly RoutingPolicy[] = ['least-loaded', 'round-robin', 'random', 'dispatcher']
/** The label of each policy in the doc. */
export const POLICY_LABEL: Record<RoutingPolicy, string> = {
  'least-loaded': 'least-loaded (dispatch script)',
  'round-robin': 'round-robin',
  random: 'random',
  dispatcher: 'least-loaded (Dispatcher)',
}

/** One run of one policy. */
export interface RoutingRun {
  repetition: number
  jobs: number
  latency: LatencySummary
  sendLagP99Us: number
  /** Share of the jobs the slow worker ran (its fair share of capacity is printed with the suite). */
  slowShare: number
  /** Busy time of all slots over the run: the utilisation actually reached. */
  utilisation: number
  probe: RunMeasurement['probe']
  otherCpuLoad: number
  /** CPUs the hypervisor took from this VM during the run (NaN when unknown). */
  stolenCpus: number
}

export interface RoutingRow {
  policy: RoutingPolicy
  meanUs: Spread
  p50Us: Spread
  p99Us: Spread
  slowShare: Spread
  utilisation: Spread
  cdf: [number, number][]
  runs: RoutingRun[]
}

export interface AffinityRun {
  repetition: number
  hasSessions: boolean
  jobs: number
  latency: LatencySummary
  hitRate: number
  /** The best hit rate possible: every request but the first of each session. */
  idealHitRate: number
  /** Max / mean jobs per worker. */
  loadSpread: number
  perWorker: Record<string, number>
  probe: RunMeasurement['probe']
  otherCpuLoad: number
  /** CPUs the hypervisor took from this VM during the run (NaN when unknown). */
  stolenCpus: number
}

export interface AffinityRow {
  hasSessions: boolean
  hitRate: Spread
  idealHitRate: Spread
  loadSpread: Spread
  p50Us: Spread
  p99Us: Spread
  runs: AffinityRun[]
}

/** One batch on the mixed pool. */
export interface MixedRun {
  repetition: number
  makespanMs: number
  /** Jobs each worker ran (its `processed` counter). */
  perWorker: Record<string, number>
}

/** The mixed pool's batch over the repetitions. */
export interface MixedRow {
  settings: { bigConcurrency: number; smallConcurrency: number; jobs: number; jobMs: number }
  /** The least makespan possible: the batch split in proportion to the slots, in whole jobs. */
  idealMs: number
  makespanMs: Spread
  /** Share of the batch the big worker ran. */
  bigShare: Spread
  runs: MixedRun[]
}

export interface RoutingResult {
  settings: {
    workers: number
    concurrency: number
    serviceMs: { fast: number; slow: number }
    timerOvershootMs: number
    ratePerSecond: number
    /** The affinity pool's rate: equal workers, the same utilisation. */
    affinityRatePerSecond: number
    utilisation: number
    slowCapacityShare: number
    jobs: number
    warmupJobs: number
    repetitions: number
    sessions: Omit<SessionMix, 'prefix'>
  }
  rows: RoutingRow[]
  affinity: AffinityRow[]
  /** Absent from results written before the mixed pool was measured. */
  mixed?: MixedRow
}

/** Mean lateness of a timer (ms): a sleep of d ms lasts about d + this, which the rate accounts for. */
export async function timerOvershootMs(): Promise<number> {
  let total = 0
  const rounds = 40
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now()
    await sleep(3 + (i % 5))
    total += performance.now() - t0 - (3 + (i % 5))
  }
  return total / rounds
}

function rotate<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

const sum = (values: Iterable<number>) => {
  let s = 0
  for (const v of values) s += v
  return s
}

/**
 * Suite e's workload for options `o`: the service times of its workers (the timers' measured
 * overshoot added), the pool's capacity, and the arrival rate that loads it to `o.utilisation`.
 */
export async function routingWorkload(
  o: Pick<
    typeof ROUTING_DEFAULTS,
    'minMs' | 'meanExtraMs' | 'slowFactor' | 'slowCount' | 'seed' | 'workers' | 'concurrency' | 'utilisation'
  >,
) {
  const overshoot = await timerOvershootMs()
  const work: WorkSpec = {
    kind: 'service',
    minMs: o.minMs,
    meanExtraMs: o.meanExtraMs,
    slowFactor: o.slowFactor,
    slowCount: o.slowCount,
    seed: o.seed,
  }
  const fastMs = meanServiceMs(work, false) + overshoot
  const slowMs = meanServiceMs(work, true) + overshoot
  const capacityPerMs =
    (o.workers - o.slowCount) * (o.concurrency / fastMs) + o.slowCount * (o.concurrency / slowMs)
  const ratePerSecond = Math.round(o.utilisation * capacityPerMs * 1_000)
  return { overshoot, work, fastMs, slowMs, capacityPerMs, ratePerSecond }
}

export async function runRouting(ctx: BenchContext, repetitions: number): Promise<RoutingResult> {
  const o = ctx.isQuick ? { ...ROUTING_DEFAULTS, ...QUICK } : ROUTING_DEFAULTS
  const { overshoot, work, fastMs, slowMs, capacityPerMs, ratePerSecond } = await routingWorkload(o)
  const slowCapacityShare = (o.slowCount * (o.concurrency / slowMs)) / capacityPerMs
  // The affinity pool has equal workers, so more capacity: the same utilisation is a higher rate.
  const equalRate = Math.round(o.utilisation * ((o.workers * o.concurrency) / fastMs) * 1_000)
  ctx.log(
    `routing: ${o.workers} workers x ${o.concurrency} slots, mean service ${fastMs.toFixed(1)} ms ` +
      `(slow: ${slowMs.toFixed(1)} ms, timer overshoot ${overshoot.toFixed(2)} ms included), ` +
      `Poisson arrivals at ${ratePerSecond}/s = ${o.utilisation * 100}% of capacity; the slow worker has ` +
      `${(slowCapacityShare * 100).toFixed(1)}% of the capacity`,
  )

  const runs = new Map<RoutingPolicy, RoutingRun[]>()
  const samples = new Map<RoutingPolicy, number[]>()
  const affinityRuns: AffinityRun[] = []
  const mixed = ctx.isQuick ? { ...MIXED_DEFAULTS, ...MIXED_QUICK } : MIXED_DEFAULTS
  const mixedRuns: MixedRun[] = []
  for (let rep = 1; rep <= repetitions; rep++) {
    const pool = `routing-${rep}`
    await ctx.conn.call('FLUSHALL', 'SYNC')
    const workerConfig: HedgeyardWorkerConfig = {
      redis: ctx.redisUrl,
      pool,
      idPrefix: 'sim',
      count: o.workers,
      concurrency: o.concurrency,
      queueCapacity: 100_000,
      work,
    }
    const { runner: worker, ready } = await RunnerProcess.start<{ type: string; workerIds: string[] }>(
      'hedgeyard-worker',
      workerConfig,
    )
    try {
      for (const policy of rotate(POLICIES, rep - 1)) {
        const config: RoutingProducerConfig = {
          redis: ctx.redisUrl,
          pool,
          workerIds: ready.workerIds,
          policy,
          ratePerSecond,
          jobs: o.jobs,
          warmupJobs: o.warmupJobs,
          seed: o.seed + rep,
          timeoutMs: 120_000,
        }
        const m = await measureSteadily(ctx, `routing rep ${rep} ${POLICY_LABEL[policy]}`, () =>
          measureWith(ctx, 'hedgeyard', worker, { runner: 'routing-producer', config }),
        )
        const assigned = (m.extra.assigned ?? {}) as Record<string, number>
        const counts = Object.keys(assigned).length > 0 ? assigned : m.worker.perWorker
        const slowJobs = counts[`${workerConfig.idPrefix}-1`] ?? 0
        const busyMs = sum(Object.values(m.worker.busyMsPerWorker))
        const run: RoutingRun = {
          repetition: rep,
          jobs: m.jobs,
          latency: summarize(m.latenciesUs ?? []),
          sendLagP99Us: summarize(m.sendLagUs ?? []).p99Us,
          slowShare: slowJobs / m.jobs,
          utilisation: busyMs / (o.workers * o.concurrency * m.wallMs),
          probe: m.probe,
          otherCpuLoad: m.otherCpuLoad,
          stolenCpus: m.stolenCpus,
        }
        runs.set(policy, [...(runs.get(policy) ?? []), run])
        samples.set(policy, [...(samples.get(policy) ?? []), ...(m.latenciesUs ?? [])])
        ctx.log(
          `routing rep ${rep}/${repetitions} ${POLICY_LABEL[policy]}: mean ${(run.latency.meanUs / 1e3).toFixed(1)} ` +
            `p99 ${(run.latency.p99Us / 1e3).toFixed(1)} ms, slow worker ran ${(run.slowShare * 100).toFixed(1)}% ` +
            `of jobs, utilisation ${(run.utilisation * 100).toFixed(0)}%; ${describeConditions(m)}`,
        )
      }
    } finally {
      await worker.stop()
    }
    affinityRuns.push(...(await runAffinity(ctx, rep, repetitions, o, equalRate, { ...work, slowCount: 0 })))
    mixedRuns.push(await runMixed(ctx, rep, repetitions, mixed))
  }

  const rows = POLICIES.map((policy): RoutingRow => {
    const list = runs.get(policy) ?? []
    const s = (pick: (r: RoutingRun) => number) => spread(list.map(pick))
    return {
      policy,
      meanUs: s((r) => r.latency.meanUs),
      p50Us: s((r) => r.latency.p50Us),
      p99Us: s((r) => r.latency.p99Us),
      slowShare: s((r) => r.slowShare),
      utilisation: s((r) => r.utilisation),
      cdf: cdfPoints(samples.get(policy) ?? []),
      runs: list,
    }
  })
  const affinity = [false, true].map((hasSessions): AffinityRow => {
    const list = affinityRuns.filter((r) => r.hasSessions === hasSessions)
    const s = (pick: (r: AffinityRun) => number) => spread(list.map(pick))
    return {
      hasSessions,
      hitRate: s((r) => r.hitRate),
      idealHitRate: s((r) => r.idealHitRate),
      loadSpread: s((r) => r.loadSpread),
      p50Us: s((r) => r.latency.p50Us),
      p99Us: s((r) => r.latency.p99Us),
      runs: list,
    }
  })
  return {
    settings: {
      workers: o.workers,
      concurrency: o.concurrency,
      serviceMs: { fast: fastMs, slow: slowMs },
      timerOvershootMs: overshoot,
      ratePerSecond,
      affinityRatePerSecond: equalRate,
      utilisation: o.utilisation,
      slowCapacityShare,
      jobs: o.jobs,
      warmupJobs: o.warmupJobs,
      repetitions,
      sessions: { ...o.sessions },
    },
    rows,
    affinity,
    mixed: {
      settings: { ...mixed },
      idealMs: idealMakespanMs(mixed),
      makespanMs: spread(mixedRuns.map((r) => r.makespanMs)),
      bigShare: spread(mixedRuns.map((r) => (r.perWorker['big-1'] ?? 0) / mixed.jobs)),
      runs: mixedRuns,
    },
  }
}

/** The least makespan of the batch: the fewest rounds of jobMs any split of whole jobs needs. */
function idealMakespanMs(m: MixedRow['settings']): number {
  let best = Number.POSITIVE_INFINITY
  for (let big = 0; big <= m.jobs; big++) {
    const rounds = Math.max(Math.ceil(big / m.bigConcurrency), Math.ceil((m.jobs - big) / m.smallConcurrency))
    best = Math.min(best, rounds)
  }
  return best * m.jobMs
}

/** One batch of jobs submitted at once to a worker of concurrency 8 and one of concurrency 1. */
async function runMixed(
  ctx: BenchContext,
  rep: number,
  repetitions: number,
  m: MixedRow['settings'],
): Promise<MixedRun> {
  const pool = `mixed-${rep}`
  await ctx.conn.call('FLUSHALL', 'SYNC')
  const start = (idPrefix: string, concurrency: number) =>
    RunnerProcess.start<{ type: string; workerIds: string[] }>('hedgeyard-worker', {
      redis: ctx.redisUrl,
      pool,
      idPrefix,
      count: 1,
      concurrency,
      queueCapacity: m.jobs,
      work: { kind: 'sleep', ms: m.jobMs },
    } satisfies HedgeyardWorkerConfig)
  const big = await start('big', m.bigConcurrency)
  try {
    const small = await start('small', m.smallConcurrency)
    try {
      const d = new Dispatcher({ redis: ctx.redisUrl, pool })
      const view = await openPoolView({ redis: ctx.redisUrl, pool }, 'bench-mixed')
      try {
        const t0 = performance.now()
        await Promise.all(Array.from({ length: m.jobs }, (_, i) => d.submit(i, { timeoutMs: 60_000 })))
        const makespanMs = performance.now() - t0
        const perWorker = Object.fromEntries(
          (await view.snapshot()).workers.map((w) => [w.workerId, w.processed]),
        )
        ctx.log(
          `mixed pool rep ${rep}/${repetitions}: ${m.jobs} jobs of ${m.jobMs} ms on concurrency ${m.bigConcurrency} + ` +
            `${m.smallConcurrency}: makespan ${(makespanMs / 1_000).toFixed(2)} s (ideal ${(idealMakespanMs(m) / 1_000).toFixed(2)} s), ` +
            `jobs per worker ${JSON.stringify(perWorker)}`,
        )
        return { repetition: rep, makespanMs, perWorker }
      } finally {
        view.close()
        await d.close()
      }
    } finally {
      await small.runner.stop()
    }
  } finally {
    await big.runner.stop()
  }
}

/** The affinity workload on equal workers: without sessions, then with (order alternating). */
async function runAffinity(
  ctx: BenchContext,
  rep: number,
  repetitions: number,
  o: {
    workers: number
    concurrency: number
    jobs: number
    warmupJobs: number
    seed: number
    sessions: Omit<SessionMix, 'prefix'>
  },
  equalRate: number,
  work: WorkSpec,
): Promise<AffinityRun[]> {
  const pool = `affinity-${rep}`
  await ctx.conn.call('FLUSHALL', 'SYNC')
  const workerConfig: HedgeyardWorkerConfig = {
    redis: ctx.redisUrl,
    pool,
    idPrefix: 'aff',
    count: o.workers,
    concurrency: o.concurrency,
    queueCapacity: 100_000,
    work,
  }
  const { runner: worker, ready } = await RunnerProcess.start<{ type: string; workerIds: string[] }>(
    'hedgeyard-worker',
    workerConfig,
  )
  const out: AffinityRun[] = []
  try {
    for (const hasSessions of rep % 2 === 1 ? [false, true] : [true, false]) {
      const config: RoutingProducerConfig = {
        redis: ctx.redisUrl,
        pool,
        workerIds: ready.workerIds,
        policy: 'dispatcher',
        ratePerSecond: equalRate,
        jobs: o.jobs,
        warmupJobs: o.warmupJobs,
        seed: o.seed + 100 + rep,
        timeoutMs: 120_000,
        ...(hasSessions ? { sessions: { prefix: `r${rep}-`, ...o.sessions } } : {}),
      }
      const m = await measureSteadily(ctx, `affinity rep ${rep}`, () =>
        measureWith(ctx, 'hedgeyard', worker, { runner: 'routing-producer', config }),
      )
      const counts = Object.values(m.worker.perWorker)
      const padded = [...counts, ...Array.from({ length: Math.max(0, o.workers - counts.length) }, () => 0)]
      const hits = Number(m.extra.affinityHits ?? 0)
      const misses = Number(m.extra.affinityMisses ?? 0)
      const run: AffinityRun = {
        repetition: rep,
        hasSessions,
        jobs: m.jobs,
        latency: summarize(m.latenciesUs ?? []),
        hitRate: hasSessions ? hits / Math.max(1, hits + misses) : Number.NaN,
        idealHitRate: hasSessions ? 1 - Number(m.extra.freshSessions ?? 0) / m.jobs : Number.NaN,
        loadSpread: Math.max(...padded) / (sum(padded) / padded.length),
        perWorker: m.worker.perWorker,
        probe: m.probe,
        otherCpuLoad: m.otherCpuLoad,
        stolenCpus: m.stolenCpus,
      }
      out.push(run)
      ctx.log(
        `affinity rep ${rep}/${repetitions} ${hasSessions ? 'sessions' : 'no sessions'} at ${equalRate}/s: ` +
          (hasSessions
            ? `hit rate ${(run.hitRate * 100).toFixed(1)}% (best possible ${(run.idealHitRate * 100).toFixed(1)}%), `
            : '') +
          `load max/mean ${run.loadSpread.toFixed(2)}, p99 ${(run.latency.p99Us / 1e3).toFixed(1)} ms; ` +
          describeConditions(m),
      )
    }
  } finally {
    await worker.stop()
  }
  return out
}
