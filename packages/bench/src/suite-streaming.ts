/**
 * Suite f, streaming: 1,000 streams of 50 chunks opened at once by a producer process, each
 * streamed by a handler on a worker process that yields as fast as it is let (no sleeps: the
 * figures are the machinery's), then the same streams with a chunk every 40 ms (a model's pace:
 * each write then carries one chunk), first in step (opened at once, the streams send their
 * chunks together, a burst of 1,000 every 40 ms), then out of step (each stream waits a random
 * part of the 40 ms before its first chunk, as a chat product's conversations would). Chunks/s, each chunk's latency from its `yield` to its receipt by
 * the consumer, streams open at once in the producer, CPU per chunk of Redis and of each process,
 * and Redis memory at the peak and once the TTL of the run's data has passed. BullMQ's closest
 * equivalent runs beside it: `job.updateProgress(chunk)` per chunk, `QueueEvents` `progress`.
 */
import { type LatencySummary, summarize } from './latency.js'
import {
  type BenchContext,
  type CommandsPerJob,
  commandsPerJob,
  conditionsOf,
  describeConditions,
  measureRun,
  measureSteadily,
  type RunConditions,
  type RunMeasurement,
  redisCallsPerJob,
} from './measure-run.js'
import type { StreamLoad } from './runners/workload.js'
import { type Spread, spread } from './stats.js'
import { type MemoryFigures, watchMemory } from './stream-memory.js'
import { type PairOptions, pairFor, SYSTEM_LABEL, systemOrder } from './systems.js'

export const STREAMING_DEFAULTS = Object.freeze({
  streams: 1_000,
  chunks: 50,
  warmupStreams: 100,
  /** Worker concurrency: every stream of the run runs at once. */
  concurrency: 1_000,
  /** Hedgeyard's result TTL, which each output stream is kept for; short, to see memory come back. */
  resultTtlMs: 2_000,
  /** The paced runs: a chunk every this many ms, a model's pace (25 tokens/s per stream). */
  pacedEveryMs: 40,
})
const QUICK = Object.freeze({
  streams: 50,
  chunks: 10,
  warmupStreams: 10,
  concurrency: 50,
  resultTtlMs: 300,
  pacedEveryMs: 5,
})

type Compared = 'hedgeyard' | 'bullmq'

/** One run; CPU and commands per chunk received. */
export interface StreamingRun extends RunConditions {
  repetition: number
  streams: number
  /** Chunks the producer received, and those it expected but never got. */
  chunks: number
  missingChunks: number
  /** Chunks that came out of order or twice. */
  misordered: number
  wallMs: number
  chunksPerSecond: number
  /** From the handler's yield (or updateProgress call) to the consumer's receipt, us. */
  latency: LatencySummary
  /** Streams open at once in the producer process: opened and not ended; mid-stream (a chunk in, not ended). */
  peakOpen: number
  peakMidStream: number
  cpuUsPerChunk: { redis: number; producer: number; worker: number; total: number }
  /** Commands Redis ran per chunk (scripts' inner commands included), and their usec per chunk. */
  redisCallsPerChunk: Record<string, { calls: number; usec: number }>
  memory: MemoryFigures
}

/** Median (min-max) over the runs of one system. */
export interface StreamingRow {
  system: Compared
  chunksPerSecond: Spread
  p50Us: Spread
  p99Us: Spread
  peakOpen: Spread
  peakMidStream: Spread
  cpuUsPerChunk: { redis: Spread; producer: Spread; worker: Spread; total: Spread }
  memory: { baselineBytes: Spread; peakGrowthBytes: Spread; leftAfterTtlBytes: Spread }
  /** Commands each process sent per chunk, in the counted run. */
  commandsPerChunk: CommandsPerJob
  runs: StreamingRun[]
}

export interface StreamingResult {
  settings: Omit<StreamLoad, 'kind'> & { concurrency: number; resultTtlMs: number; repetitions: number }
  /** The handler yields as fast as it is let. */
  rows: StreamingRow[]
  /** The same streams with a chunk every `everyMs` (absent in results written before it was run). */
  paced?: { everyMs: number; rows: StreamingRow[] }
  /** The paced streams out of step (absent in results written before it was run). */
  outOfStep?: { everyMs: number; rows: StreamingRow[] }
}

function perChunk(m: RunMeasurement, memory: MemoryFigures, repetition: number): StreamingRun {
  const chunks = Number(m.extra.chunks)
  const cpu = {
    redis: m.redisCpuUs / chunks,
    producer: m.producer.cpuUs / chunks,
    worker: m.worker.cpuUs / chunks,
  }
  return {
    repetition,
    streams: m.jobs,
    chunks,
    missingChunks: Number(m.extra.missing),
    misordered: Number(m.extra.misordered),
    wallMs: m.wallMs,
    chunksPerSecond: chunks / (m.wallMs / 1_000),
    latency: summarize(m.latenciesUs ?? []),
    peakOpen: Number(m.extra.peakOpen),
    peakMidStream: Number(m.extra.peakMidStream),
    cpuUsPerChunk: { ...cpu, total: cpu.redis + cpu.producer + cpu.worker },
    redisCallsPerChunk: redisCallsPerJob(m, chunks),
    memory,
    ...conditionsOf(m),
  }
}

function rowOf(system: Compared, runs: StreamingRun[], commandsPerChunk: CommandsPerJob): StreamingRow {
  const s = (pick: (r: StreamingRun) => number) => spread(runs.map(pick))
  return {
    system,
    chunksPerSecond: s((r) => r.chunksPerSecond),
    p50Us: s((r) => r.latency.p50Us),
    p99Us: s((r) => r.latency.p99Us),
    peakOpen: s((r) => r.peakOpen),
    peakMidStream: s((r) => r.peakMidStream),
    cpuUsPerChunk: {
      redis: s((r) => r.cpuUsPerChunk.redis),
      producer: s((r) => r.cpuUsPerChunk.producer),
      worker: s((r) => r.cpuUsPerChunk.worker),
      total: s((r) => r.cpuUsPerChunk.total),
    },
    memory: {
      baselineBytes: s((r) => r.memory.baselineBytes),
      peakGrowthBytes: s((r) => r.memory.peakBytes - r.memory.baselineBytes),
      leftAfterTtlBytes: s((r) => r.memory.afterTtlBytes - r.memory.baselineBytes),
    },
    commandsPerChunk,
    runs,
  }
}

export async function runStreaming(ctx: BenchContext, repetitions: number): Promise<StreamingResult> {
  const size = ctx.isQuick ? QUICK : STREAMING_DEFAULTS
  const load: StreamLoad = {
    kind: 'streams',
    streams: size.streams,
    chunks: size.chunks,
    warmupStreams: size.warmupStreams,
  }
  const options = (name: string, everyMs?: number, isOutOfStep = false): PairOptions => ({
    name,
    concurrency: size.concurrency,
    work:
      everyMs === undefined
        ? { kind: 'stream' }
        : { kind: 'stream', everyMs, ...(isOutOfStep ? { isOutOfStep } : {}) },
    workload: load,
    resultTtlMs: size.resultTtlMs,
  })
  /** Every repetition of both systems, then each system's commands counted in a run of its own. */
  const measureRows = async (everyMs?: number, isOutOfStep = false): Promise<StreamingRow[]> => {
    const pace =
      everyMs === undefined ? '' : ` a chunk every ${everyMs} ms${isOutOfStep ? ', out of step' : ''}`
    const runs: Record<Compared, StreamingRun[]> = { hedgeyard: [], bullmq: [] }
    for (let rep = 1; rep <= repetitions; rep++) {
      for (const system of systemOrder(rep)) {
        if (system !== 'hedgeyard' && system !== 'bullmq') continue
        const spec = pairFor(system, ctx, options(`stream-${rep}`, everyMs, isOutOfStep))
        const label = `streaming${pace} rep ${rep} ${SYSTEM_LABEL[system]}`
        const { m, run } = await measureSteadily(ctx, label, async () => {
          const memory = watchMemory(ctx.conn, size.resultTtlMs)
          const measured = await measureRun(ctx, spec, memory.hooks)
          const one = perChunk(measured, memory.figures(), rep)
          return { m: measured, run: one, otherCpuLoad: measured.otherCpuLoad }
        })
        if (run.missingChunks > 0 || run.misordered > 0) {
          ctx.log(`${label}: ${run.missingChunks} chunk(s) never came, ${run.misordered} out of order`)
        }
        runs[system].push(run)
        const kib = (b: number) => `${(b / 1024).toFixed(0)} KiB`
        ctx.log(
          `streaming${pace} rep ${rep}/${repetitions} ${SYSTEM_LABEL[system]}: ${Math.round(run.chunksPerSecond)} chunks/s, ` +
            `chunk p50 ${(run.latency.p50Us / 1e3).toFixed(1)} ms p99 ${(run.latency.p99Us / 1e3).toFixed(1)} ms, ` +
            `open ${run.peakOpen} (mid-stream ${run.peakMidStream}), CPU/chunk ${run.cpuUsPerChunk.total.toFixed(1)} us ` +
            `(Redis ${run.cpuUsPerChunk.redis.toFixed(1)}, producer ${run.cpuUsPerChunk.producer.toFixed(1)}, ` +
            `worker ${run.cpuUsPerChunk.worker.toFixed(1)}); memory ${kib(run.memory.baselineBytes)} -> peak ` +
            `${kib(run.memory.peakBytes)} -> after TTL ${kib(run.memory.afterTtlBytes)}; ${describeConditions(m)}`,
        )
      }
    }
    const rows: StreamingRow[] = []
    for (const system of ['hedgeyard', 'bullmq'] as const) {
      // The commands each process sends, counted in a run of their own (counting costs CPU).
      const counted = await measureRun(
        ctx,
        pairFor(system, ctx, { ...options('stream-count', everyMs, isOutOfStep), countCommands: true }),
      )
      rows.push(rowOf(system, runs[system], commandsPerJob(counted, Number(counted.extra.chunks))))
    }
    return rows
  }
  const rows = await measureRows()
  const pacedRows = await measureRows(size.pacedEveryMs)
  const outOfStepRows = await measureRows(size.pacedEveryMs, true)
  return {
    settings: {
      streams: load.streams,
      chunks: load.chunks,
      warmupStreams: load.warmupStreams,
      concurrency: size.concurrency,
      resultTtlMs: size.resultTtlMs,
      repetitions,
    },
    rows,
    paced: { everyMs: size.pacedEveryMs, rows: pacedRows },
    outOfStep: { everyMs: size.pacedEveryMs, rows: outOfStepRows },
  }
}
