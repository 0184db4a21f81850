/**
 * The targets of the benchmark issue, checked against one run's results. Ratios compare
 * Hedgeyard with BullMQ measured in the same run: the ratio of the medians, and the range of
 * the ratios of each repetition (the two ran next to each other).
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
  /** When missed: how far from the bar, in words. */
  missedBy?: string
  /**
   * Latency targets: the same figure for the plain-commands baseline of the same run (a minimal
   * streams job with no library). When it misses the bar too, the bar lies below what this
   * machine gave a job over Redis in this run without any library work.
   */
  plain?: { measured: string; value: number; isMet: boolean }
  /**
   * The same figure for a floor of the same run, something that does less than a dispatcher
   * through Redis does. The closed loop: a bare round trip through Redis (the job published to the
   * worker, the result published back, nothing stored). The open loop: no dispatch at all (the
   * load generator and the handler in one process, no Redis). The dispatch cost: the bare writes
   * of a least-loaded placement under the key layout (dispatch-floor.ts).
   * `isMet` is false only when the floor misses the bar in every run (round), not just at the
   * median. `kind`: 'latency' is a request's time, which a dispatcher's work adds to; 'cost' is a
   * ratio of costs, which more work at every size brings down, so a floor over the bar does not
   * put it out of reach.
   */
  floor?: { name: string; kind: 'latency' | 'cost'; measured: string; value: number; isMet: boolean }
}

function fmtRatio(value: number, range?: Spread): string {
  const r = range && Number.isFinite(range.min) ? ` (${range.min.toFixed(2)}-${range.max.toFixed(2)})` : ''
  return `${value.toFixed(2)}x${r}`
}

/** Per repetition: pick(a) / pick(b) of the runs with the same repetition number. */
function pairedRatio<T extends { repetition: number }>(
  a: readonly T[],
  b: readonly T[],
  pick: (r: T) => number,
): Spread {
  return spread(
    a.flatMap((ra) => {
      const rb = b.find((r) => r.repetition === ra.repetition)
      return rb ? [pick(ra) / pick(rb)] : []
    }),
  )
}

/** A bar as the issue states it: `2.5`, or `0.33` for a third. */
function fmtBar(bar: number): string {
  return Number.isInteger(bar * 100) ? String(bar) : bar.toFixed(2)
}

function atLeast(id: string, label: string, bar: number, value: number, range?: Spread): Target {
  const isMet = value >= bar
  const b = fmtBar(bar)
  return {
    id,
    label,
    goal: `>= ${b}x`,
    measured: fmtRatio(value, range),
    value,
    isMet,
    ...(isMet
      ? {}
      : { missedBy: `${((1 - value / bar) * 100).toFixed(0)}% short: ${value.toFixed(2)}x of ${b}x` }),
  }
}

function atMost(id: string, label: string, bar: number, value: number, range?: Spread): Target {
  const isMet = value <= bar
  const b = fmtBar(bar)
  return {
    id,
    label,
    goal: `<= ${b}x`,
    measured: fmtRatio(value, range),
    value,
    isMet,
    ...(isMet
      ? {}
      : { missedBy: `${((value / bar - 1) * 100).toFixed(0)}% over: ${value.toFixed(2)}x against ${b}x` }),
  }
}

function row(t: ThroughputResult, system: string, concurrency: number): ThroughputRow | undefined {
  return t.rows.find((r) => r.system === system && r.concurrency === concurrency)
}

export interface TargetInputs {
  throughput?: ThroughputResult | undefined
  closedLoop?: LatencyResult | undefined
  openLoop?: LatencyResult | undefined
  dispatchCost?: DispatchCostResult | undefined
  routing?: RoutingResult | undefined
  redisLimit?: RedisLimitResult | undefined
  streaming?: StreamingResult | undefined
}

/** The floors of the latency targets, as the targets table names them. */
export const BOUNCE_FLOOR = 'a bare round trip through Redis (PUBLISH there and back)'
export const LOCAL_FLOOR = 'no dispatch at all (one process, no Redis)'
export const DISPATCH_FLOOR = "the bare writes of a placement of 64 jobs (suite d's floor)"

/** Open-loop p99 may exceed the handler's 5 ms by this much. */
export const OPEN_LOOP_MARGIN_MS = 1.5

export function checkTargets(r: TargetInputs): Target[] {
  const out: Target[] = []
  if (r.throughput) {
    for (const concurrency of r.throughput.settings.concurrencies) {
      const hy = row(r.throughput, 'hedgeyard', concurrency)
      const bq = row(r.throughput, 'bullmq', concurrency)
      if (!hy || !bq) continue
      out.push(
        atLeast(
          `throughput-c${concurrency}`,
          `throughput, concurrency ${concurrency}: jobs/s against BullMQ`,
          2.5,
          hy.jobsPerSecond.median / bq.jobsPerSecond.median,
          pairedRatio<ThroughputRun>(hy.runs, bq.runs, (x) => x.jobsPerSecond),
        ),
        atMost(
          `cpu-c${concurrency}`,
          `CPU per job, concurrency ${concurrency} (Redis + every Node process) against BullMQ`,
          0.4,
          hy.totalUsPerJob.median / bq.totalUsPerJob.median,
          pairedRatio<ThroughputRun>(hy.runs, bq.runs, (x) => x.totalUsPerJob),
        ),
      )
    }
  }
  if (r.closedLoop) {
    const hy = ranRow(r.closedLoop, 'hedgeyard')
    const bq = ranRow(r.closedLoop, 'bullmq')
    const plain = ranRow(r.closedLoop, 'plain')
    const bounce = ranRow(r.closedLoop, 'pubsub')
    if (hy && bq) {
      const closed = (
        id: string,
        label: string,
        bar: number,
        pick: (x: LatencyRun) => number,
        of: (x: LatencyRow) => number,
      ) => {
        const against = (x: LatencyRow, isFloor = false) => {
          const value = of(x) / of(bq)
          const range = pairedRatio(x.runs, bq.runs, pick)
          return { measured: fmtRatio(value, range), value, isMet: (isFloor ? range.min : value) <= bar }
        }
        const t = atMost(id, label, bar, of(hy) / of(bq), pairedRatio(hy.runs, bq.runs, pick))
        return {
          ...t,
          ...(plain ? { plain: against(plain) } : {}),
          ...(bounce
            ? { floor: { name: BOUNCE_FLOOR, kind: 'latency' as const, ...against(bounce, true) } }
            : {}),
        }
      }
      out.push(
        closed(
          'closed-p50',
          'closed loop p50 against BullMQ',
          0.7,
          (x) => x.latency.p50Us,
          (x) => x.p50Us.median,
        ),
        closed(
          'closed-p99',
          'closed loop p99 against BullMQ',
          0.5,
          (x) => x.latency.p99Us,
          (x) => x.p99Us.median,
        ),
      )
    }
  }
  if (r.openLoop) {
    const hy = ranRow(r.openLoop, 'hedgeyard')
    const handlerMs = Number(r.openLoop.settings.handlerMs ?? 5)
    const plain = ranRow(r.openLoop, 'plain')
    const local = ranRow(r.openLoop, 'local')
    if (hy) {
      const bar = handlerMs + OPEN_LOOP_MARGIN_MS
      const value = hy.p99Us.median / 1_000
      const isMet = value <= bar
      const msRange = (s: Spread) =>
        `${(s.median / 1e3).toFixed(2)} ms (${(s.min / 1e3).toFixed(2)}-${(s.max / 1e3).toFixed(2)})`
      const p99AgainstBar = (x: LatencyRow, isFloor = false) => ({
        measured: msRange(x.p99Us),
        value: x.p99Us.median / 1_000,
        isMet: (isFloor ? x.p99Us.min : x.p99Us.median) / 1_000 <= bar,
      })
      out.push({
        id: 'open-p99',
        label: `open loop p99 (handler ${handlerMs} ms), from the scheduled send`,
        goal: `<= ${bar} ms`,
        measured:
          msRange(hy.p99Us) +
          (hy.overheadP99Us
            ? `; minus the handler's own time: ${(hy.overheadP99Us.median / 1e3).toFixed(2)} ms`
            : ''),
        value,
        isMet,
        ...(isMet
          ? {}
          : {
              missedBy: `${(value - bar).toFixed(2)} ms over (${(value - handlerMs).toFixed(2)} ms above the handler)`,
            }),
        ...(plain ? { plain: p99AgainstBar(plain) } : {}),
        ...(local
          ? { floor: { name: LOCAL_FLOOR, kind: 'latency' as const, ...p99AgainstBar(local, true) } }
          : {}),
      })
    }
  }
  if (r.dispatchCost) {
    if (libraryDispatchVariants(r.dispatchCost).length > 0) {
      const worst = worstDispatchVariant(r.dispatchCost)
      const floor = dispatchFloorVariant(r.dispatchCost)
      const t = atMost(
        'dispatch-1000',
        `dispatch Redis CPU, 1,000 workers against 8 (worst variant: ${worst.variant})`,
        DISPATCH_LIMIT_RATIO,
        worst.redisCpuRatio.ofMedians,
        worst.redisCpuRatio.perRound,
      )
      out.push({
        ...t,
        goal: `<= ${DISPATCH_LIMIT_RATIO}x`,
        ...(floor
          ? {
              floor: {
                name: DISPATCH_FLOOR,
                kind: 'cost' as const,
                measured: fmtRatio(floor.redisCpuRatio.ofMedians, floor.redisCpuRatio.perRound),
                value: floor.redisCpuRatio.ofMedians,
                isMet: floor.redisCpuRatio.perRound.min <= DISPATCH_LIMIT_RATIO,
              },
            }
          : {}),
      })
    }
  }
  if (r.routing) {
    const ll = r.routing.rows.find((x) => x.policy === 'least-loaded')
    const rr = r.routing.rows.find((x) => x.policy === 'round-robin')
    if (ll && rr) {
      out.push(
        atLeast(
          'routing-p99',
          'routing at 70% with a 3x slower worker: round-robin p99 / least-loaded p99',
          2,
          rr.p99Us.median / ll.p99Us.median,
          pairedRatio(rr.runs, ll.runs, (x) => x.latency.p99Us),
        ),
      )
    }
  }
  if (r.streaming) out.push(...streamingTargets(r.streaming))
  return out
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
  return [
    atLeast(
      'stream-rate',
      `streaming, ${size}: chunks/s against BullMQ`,
      3,
      hy.chunksPerSecond.median / bq.chunksPerSecond.median,
      pairedRatio(hy.runs, bq.runs, (x) => x.chunksPerSecond),
    ),
    atMost(
      'stream-p99',
      `streaming, ${size}: per-chunk p99 (yield to receipt) against BullMQ`,
      1 / 3,
      hy.p99Us.median / bq.p99Us.median,
      pairedRatio(hy.runs, bq.runs, (x) => x.latency.p99Us),
    ),
    {
      id: 'stream-memory',
      label: `streaming: Hedgeyard's Redis memory back to the baseline ${s.settings.resultTtlMs / 1_000} s (its TTL) after the run`,
      goal: `<= ${MEMORY_RETURN_SHARE * 100}% of the peak's growth left, no key without a TTL`,
      measured:
        `worst run ${kib(worst.left)} (${(worst.share * 100).toFixed(1)}% of the peak's growth), ` +
        `${lasting === 0 ? 'no key' : `${lasting} key(s)`} left without a TTL`,
      value: worst.share,
      isMet: isMemoryMet,
      ...(isMemoryMet
        ? {}
        : {
            missedBy:
              lasting > 0
                ? `${lasting} key(s) of the run would stay for good`
                : `${(worst.share * 100).toFixed(1)}% of the peak's growth left`,
          }),
    },
  ]
}

/** Our bulk jobs/s (concurrency 50) against the Redis limits (reported, not a target). */
export function limitRatios(
  t: ThroughputResult | undefined,
  l: RedisLimitResult | undefined,
): { name: string; limitJobsPerSecond: number; ratio: number }[] {
  const hy = t && row(t, 'hedgeyard', 50)
  if (!hy || !l) return []
  const ours = hy.jobsPerSecond.median
  const out = l.plainJobLimit.map((p) => ({
    name: `the five plain commands of a job, -P ${p.pipeline}`,
    limitJobsPerSecond: p.jobsPerSecond.median,
    ratio: ours / p.jobsPerSecond.median,
  }))
  for (const rowOf of l.rows.filter((x) => x.name.startsWith('dispatch'))) {
    out.push({
      name: `${rowOf.name}, -P ${rowOf.pipeline} (dispatch alone)`,
      limitJobsPerSecond: rowOf.jobsPerSecond.median,
      ratio: ours / rowOf.jobsPerSecond.median,
    })
  }
  return out
}
