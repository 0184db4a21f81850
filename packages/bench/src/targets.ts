/**
 * The targets of the benchmark issue, checked against one run's results. Ratios compare
 * Hedgeyard with BullMQ measured in the same run: the ratio of the medians, and the range of the
 * ratios of each repetition (the two ran next to each other).
 */
import { type Spread, spread } from './stats.js'
import { MEMORY_RETURN_SHARE } from './stream-memory.js'
import {
  DISPATCH_LIMIT_RATIO,
  type DispatchCostResult,
  dispatchFloorVariant,
  libraryDispatchVariants,
  worstDispatchVariant,
} from './suite-dispatch-cost.js'
import { type LatencyResult, type LatencyRow, type LatencyRun, ranRow } from './suite-latency.js'
import type { RedisLimitResult } from './suite-redis-limit.js'
import type { RoutingResult } from './suite-routing.js'
import type { StreamingResult } from './suite-streaming.js'
import type { ThroughputResult, ThroughputRow, ThroughputRun } from './suite-throughput.js'

/** The same figure for a baseline or floor measured in the same run. */
export interface Reference {
  measured: string
  value: number
  /** A floor: false only when it misses the bar in every run (round), not just at the median. */
  isMet: boolean
}

/** One target: what it asks, what was measured, met or not and by how much. */
export interface Target {
  id: string
  label: string
  /** The bar, e.g. ">= 2.5x". */
  goal: string
  /** The measured figure, e.g. "2.61x (2.3-2.9)". */
  measured: string
  /** The figure compared with the bar (ratio of medians, or ms). */
  value: number
  isMet: boolean
  /** When missed: how far from the bar. */
  missedBy?: string
  /** Latency targets: the plain-commands baseline (a minimal streams job with no library). */
  plain?: Reference
  /**
   * A floor that does less than a dispatcher through Redis: a bare round trip through Redis
   * (closed loop), no dispatch at all (open loop), the bare writes of a placement (dispatch
   * cost). `kind` 'latency' is a request's time, which a dispatcher's work adds to; 'cost' is a
   * ratio of costs, which more work at every size brings down, so its being over the bar does
   * not put the bar out of reach.
   */
  floor?: Reference & { name: string; kind: 'latency' | 'cost' }
}

/** The floors, as the targets table names them. */
export const BOUNCE_FLOOR = 'a bare round trip through Redis (PUBLISH there and back)'
export const LOCAL_FLOOR = 'no dispatch at all (one process, no Redis)'
export const DISPATCH_FLOOR = "the bare writes of a placement of 64 jobs (suite d's floor)"

/** Open-loop p99 may exceed the handler's 5 ms by this much. */
export const OPEN_LOOP_MARGIN_MS = 1.5

function fmtRatio(value: number, range?: Spread): string {
  const r = range && Number.isFinite(range.min) ? ` (${range.min.toFixed(2)}-${range.max.toFixed(2)})` : ''
  return `${value.toFixed(2)}x${r}`
}

/** Per repetition: pick(a) / pick(b) of the runs with the same repetition number. */
function pairedRatio<T extends { repetition: number }>(
  a: readonly T[],
  b: readonly T[],
  pick: (r: T) => number,
) {
  return spread(
    a.flatMap((ra) => {
      const rb = b.find((r) => r.repetition === ra.repetition)
      return rb ? [pick(ra) / pick(rb)] : []
    }),
  )
}

/** A ratio target: at least `bar` (`isAtLeast`) or at most. */
function ratio(
  id: string,
  label: string,
  isAtLeast: boolean,
  bar: number,
  value: number,
  range?: Spread,
): Target {
  const isMet = isAtLeast ? value >= bar : value <= bar
  const b = Number.isInteger(bar * 100) ? String(bar) : bar.toFixed(2)
  const off = isAtLeast
    ? `${((1 - value / bar) * 100).toFixed(0)}% short`
    : `${((value / bar - 1) * 100).toFixed(0)}% over`
  return {
    id,
    label,
    goal: `${isAtLeast ? '>=' : '<='} ${b}x`,
    measured: fmtRatio(value, range),
    value,
    isMet,
    ...(isMet ? {} : { missedBy: off }),
  }
}

function throughputRow(t: ThroughputResult, system: string, concurrency: number): ThroughputRow | undefined {
  return t.rows.find((r) => r.system === system && r.concurrency === concurrency)
}

/** The results the targets are checked on. */
export interface TargetInputs {
  throughput?: ThroughputResult | undefined
  closedLoop?: LatencyResult | undefined
  openLoop?: LatencyResult | undefined
  dispatchCost?: DispatchCostResult | undefined
  routing?: RoutingResult | undefined
  streaming?: StreamingResult | undefined
}

function throughputTargets(t: ThroughputResult): Target[] {
  return t.settings.concurrencies.flatMap((c) => {
    const hy = throughputRow(t, 'hedgeyard', c)
    const bq = throughputRow(t, 'bullmq', c)
    if (!hy || !bq) return []
    const paired = (pick: (x: ThroughputRun) => number) => pairedRatio(hy.runs, bq.runs, pick)
    return [
      ratio(
        `throughput-c${c}`,
        `throughput, concurrency ${c}: jobs/s against BullMQ`,
        true,
        2.5,
        hy.jobsPerSecond.median / bq.jobsPerSecond.median,
        paired((x) => x.jobsPerSecond),
      ),
      ratio(
        `cpu-c${c}`,
        `CPU per job, concurrency ${c} (Redis + every Node process) against BullMQ`,
        false,
        0.4,
        hy.totalUsPerJob.median / bq.totalUsPerJob.median,
        paired((x) => x.totalUsPerJob),
      ),
    ]
  })
}

function closedLoopTargets(l: LatencyResult): Target[] {
  const [hy, bq, plain, bounce] = (['hedgeyard', 'bullmq', 'plain', 'pubsub'] as const).map((s) =>
    ranRow(l, s),
  )
  if (!hy || !bq) return []
  const target = (
    id: string,
    label: string,
    bar: number,
    of: (x: LatencyRow) => number,
    pick: (x: LatencyRun) => number,
  ) => {
    const against = (x: LatencyRow, isFloor: boolean): Reference => {
      const range = pairedRatio(x.runs, bq.runs, pick)
      const value = of(x) / of(bq)
      return { measured: fmtRatio(value, range), value, isMet: (isFloor ? range.min : value) <= bar }
    }
    return {
      ...ratio(id, label, false, bar, of(hy) / of(bq), pairedRatio(hy.runs, bq.runs, pick)),
      ...(plain ? { plain: against(plain, false) } : {}),
      ...(bounce
        ? { floor: { name: BOUNCE_FLOOR, kind: 'latency' as const, ...against(bounce, true) } }
        : {}),
    }
  }
  return [
    target(
      'closed-p50',
      'closed loop p50 against BullMQ',
      0.7,
      (x) => x.p50Us.median,
      (x) => x.latency.p50Us,
    ),
    target(
      'closed-p99',
      'closed loop p99 against BullMQ',
      0.5,
      (x) => x.p99Us.median,
      (x) => x.latency.p99Us,
    ),
  ]
}

function openLoopTarget(l: LatencyResult): Target[] {
  const hy = ranRow(l, 'hedgeyard')
  if (!hy) return []
  const handlerMs = Number(l.settings.handlerMs ?? 5)
  const bar = handlerMs + OPEN_LOOP_MARGIN_MS
  const ms = (us: number) => (us / 1e3).toFixed(2)
  const against = (x: LatencyRow, isFloor: boolean): Reference => ({
    measured: `${ms(x.p99Us.median)} ms (${ms(x.p99Us.min)}-${ms(x.p99Us.max)})`,
    value: x.p99Us.median / 1_000,
    isMet: (isFloor ? x.p99Us.min : x.p99Us.median) / 1_000 <= bar,
  })
  const ours = against(hy, false)
  const plain = ranRow(l, 'plain')
  const local = ranRow(l, 'local')
  const overhead = hy.overheadP99Us ? `; minus the handler's own time: ${ms(hy.overheadP99Us.median)} ms` : ''
  return [
    {
      id: 'open-p99',
      label: `open loop p99 (handler ${handlerMs} ms), from the scheduled send`,
      goal: `<= ${bar} ms`,
      measured: ours.measured + overhead,
      value: ours.value,
      isMet: ours.isMet,
      ...(ours.isMet ? {} : { missedBy: `${(ours.value - bar).toFixed(2)} ms over` }),
      ...(plain ? { plain: against(plain, false) } : {}),
      ...(local ? { floor: { name: LOCAL_FLOOR, kind: 'latency' as const, ...against(local, true) } } : {}),
    },
  ]
}

function dispatchTarget(d: DispatchCostResult): Target[] {
  if (libraryDispatchVariants(d).length === 0) return []
  const worst = worstDispatchVariant(d)
  const floor = dispatchFloorVariant(d)
  const label = `dispatch Redis CPU, 1,000 workers against 8 (worst variant: ${worst.variant})`
  const r = worst.redisCpuRatio
  const t = ratio('dispatch-1000', label, false, DISPATCH_LIMIT_RATIO, r.ofMedians, r.perRound)
  if (!floor) return [t]
  const f = floor.redisCpuRatio
  const measured = fmtRatio(f.ofMedians, f.perRound)
  const isMet = f.perRound.min <= DISPATCH_LIMIT_RATIO
  return [{ ...t, floor: { name: DISPATCH_FLOOR, kind: 'cost', measured, value: f.ofMedians, isMet } }]
}

function routingTarget(g: RoutingResult): Target[] {
  const ll = g.rows.find((x) => x.policy === 'least-loaded')
  const rr = g.rows.find((x) => x.policy === 'round-robin')
  if (!ll || !rr) return []
  const label = 'routing at 70% with a 3x slower worker: round-robin p99 / least-loaded p99'
  const range = pairedRatio(rr.runs, ll.runs, (x) => x.latency.p99Us)
  return [ratio('routing-p99', label, true, 2, rr.p99Us.median / ll.p99Us.median, range)]
}

/**
 * Suite f: Hedgeyard's chunk rate at least 3x BullMQ's, its per-chunk p99 at most a third of
 * BullMQ's, and in every run its Redis memory back to the baseline once the TTL has passed: at
 * most {@link MEMORY_RETURN_SHARE} of the peak's growth left, and no key of the run without a TTL.
 */
function streamingTargets(s: StreamingResult): Target[] {
  const hy = s.rows.find((x) => x.system === 'hedgeyard')
  const bq = s.rows.find((x) => x.system === 'bullmq')
  if (!hy || !bq || hy.runs.length === 0 || bq.runs.length === 0) return []
  const size = `${s.settings.streams.toLocaleString('en')} streams x ${s.settings.chunks} chunks`
  const shares = hy.runs.map((x) => {
    const left = x.memory.afterTtlBytes - x.memory.baselineBytes
    // A tiny run (--quick) may never rise above the baseline's noise: count its growth as 1 byte.
    const growth = Math.max(1, x.memory.peakBytes - x.memory.baselineBytes)
    return { share: left / growth, left, lasting: x.memory.keysLeftWithoutTtl.length }
  })
  const worst = shares.reduce((a, b) => (b.share > a.share ? b : a))
  const lasting = Math.max(...shares.map((x) => x.lasting))
  const isMemoryMet = worst.share <= MEMORY_RETURN_SHARE && lasting === 0
  const kib = (b: number) => `${b >= 0 ? '+' : ''}${(b / 1_024).toFixed(0)} KiB`
  const share = `${(worst.share * 100).toFixed(1)}% of the peak's growth`
  return [
    ratio(
      'stream-rate',
      `streaming, ${size}: chunks/s against BullMQ`,
      true,
      3,
      hy.chunksPerSecond.median / bq.chunksPerSecond.median,
      pairedRatio(hy.runs, bq.runs, (x) => x.chunksPerSecond),
    ),
    ratio(
      'stream-p99',
      `streaming, ${size}: per-chunk p99 (yield to receipt) against BullMQ`,
      false,
      1 / 3,
      hy.p99Us.median / bq.p99Us.median,
      pairedRatio(hy.runs, bq.runs, (x) => x.latency.p99Us),
    ),
    {
      id: 'stream-memory',
      label: `streaming: Hedgeyard's Redis memory back to the baseline ${s.settings.resultTtlMs / 1_000} s (its TTL) after the run`,
      goal: `<= ${MEMORY_RETURN_SHARE * 100}% of the peak's growth left, no key without a TTL`,
      measured: `worst run ${kib(worst.left)} (${share}), ${lasting === 0 ? 'no key' : `${lasting} key(s)`} left without a TTL`,
      value: worst.share,
      isMet: isMemoryMet,
      ...(isMemoryMet
        ? {}
        : { missedBy: lasting > 0 ? `${lasting} key(s) would stay for good` : `${share} left` }),
    },
  ]
}

export function checkTargets(r: TargetInputs): Target[] {
  return [
    ...(r.throughput ? throughputTargets(r.throughput) : []),
    ...(r.closedLoop ? closedLoopTargets(r.closedLoop) : []),
    ...(r.openLoop ? openLoopTarget(r.openLoop) : []),
    ...(r.dispatchCost ? dispatchTarget(r.dispatchCost) : []),
    ...(r.routing ? routingTarget(r.routing) : []),
    ...(r.streaming ? streamingTargets(r.streaming) : []),
  ]
}

/** Our bulk jobs/s (concurrency 50) against the Redis limits (reported, not a target). */
export function limitRatios(
  t: ThroughputResult | undefined,
  l: RedisLimitResult | undefined,
): { name: string; limitJobsPerSecond: number; ratio: number }[] {
  const hy = t && throughputRow(t, 'hedgeyard', 50)
  if (!hy || !l) return []
  const ours = hy.jobsPerSecond.median
  return [
    ...l.plainJobLimit.map((p) => ({
      name: `the five plain commands of a job, -P ${p.pipeline}`,
      limit: p.jobsPerSecond,
    })),
    ...l.rows
      .filter((x) => x.name.startsWith('dispatch'))
      .map((x) => ({
        name: `${x.name}, -P ${x.pipeline} (dispatch alone)`,
        limit: x.jobsPerSecond,
      })),
  ].map((x) => ({ name: x.name, limitJobsPerSecond: x.limit.median, ratio: ours / x.limit.median }))
}
