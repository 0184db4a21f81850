/** Suite f's tables, in Markdown (see report-tables.ts). */
import { countList, medianRecord } from './report-tables.js'
import { fmt, markdownTable, type Spread, spread } from './stats.js'
import type { StreamingResult, StreamingRow, StreamingRun } from './suite-streaming.js'
import { SYSTEM_LABEL } from './systems.js'

const ms = (s: Spread) => fmt(s, 1, 1 / 1_000)
/** KiB, median (min to max): memory left after the TTL is often below the baseline, so negative. */
function kib(s: Spread): string {
  if (!Number.isFinite(s.median)) return '-'
  const v = (x: number) => (x / 1_024).toFixed(0)
  return s.min === s.max ? v(s.median) : `${v(s.median)} (${v(s.min)} to ${v(s.max)})`
}

/** The rows of both runs, each with how its handler sent its chunks. */
function allRows(s: StreamingResult): { handler: string; row: StreamingRow }[] {
  const out = s.rows.map((row) => ({ handler: 'as fast as let', row }))
  for (const row of s.paced?.rows ?? []) out.push({ handler: `a chunk every ${s.paced?.everyMs} ms`, row })
  for (const row of s.outOfStep?.rows ?? [])
    out.push({ handler: `a chunk every ${s.outOfStep?.everyMs} ms, out of step`, row })
  return out
}

/** Rate, latency per chunk, streams open at once and CPU per chunk, for both runs. */
export function streamingTable(s: StreamingResult): string {
  return markdownTable(
    [
      'handler',
      'system',
      'chunks/s',
      'chunk p50 ms',
      'chunk p99 ms',
      'open at once: streams / mid-stream',
      'CPU us/chunk (all)',
      'Redis',
      'producer',
      'worker',
    ],
    allRows(s).map(({ handler, row: r }) => [
      handler,
      SYSTEM_LABEL[r.system],
      fmt(r.chunksPerSecond, 0),
      ms(r.p50Us),
      ms(r.p99Us),
      `${fmt(r.peakOpen, 0)} / ${fmt(r.peakMidStream, 0)}`,
      fmt(r.cpuUsPerChunk.total, 1),
      fmt(r.cpuUsPerChunk.redis, 1),
      fmt(r.cpuUsPerChunk.producer, 1),
      fmt(r.cpuUsPerChunk.worker, 1),
    ]),
  )
}

/** Redis `used_memory` before, at the peak and after the TTL; keys the run left behind. */
export function streamingMemoryTable(s: StreamingResult): string {
  const keysLeft = (r: StreamingRow) => {
    const withoutTtl = Math.max(...r.runs.map((x) => x.memory.keysLeftWithoutTtl.length))
    return `${fmt(
      spread(r.runs.map((x) => x.memory.keysLeft)),
      0,
    )} (without a TTL: ${withoutTtl === 0 ? 'none' : r.runs.flatMap((x) => x.memory.keysLeftWithoutTtl).join(', ')})`
  }
  return markdownTable(
    [
      'system',
      'baseline KiB',
      'peak, above the baseline KiB',
      'after the TTL, above the baseline KiB',
      'keys of the run left after the TTL',
    ],
    s.rows.map((r) => [
      SYSTEM_LABEL[r.system],
      kib(r.memory.baselineBytes),
      kib(r.memory.peakGrowthBytes),
      kib(r.memory.leftAfterTtlBytes),
      keysLeft(r),
    ]),
  )
}

/** Commands each process sent per chunk, and where Redis spent its time per chunk. */
export function streamingCommandsTable(s: StreamingResult): string {
  const redisUs = (runs: readonly StreamingRun[]) =>
    medianRecord(
      runs.map((run) =>
        Object.fromEntries(Object.entries(run.redisCallsPerChunk).map(([k, v]) => [k, v.usec])),
      ),
    )
  return markdownTable(
    [
      'handler',
      'system',
      'producer sends per chunk',
      'worker sends per chunk',
      'Redis usec per chunk by command (INFO commandstats, top 5)',
    ],
    allRows(s).map(({ handler, row: r }) => [
      handler,
      SYSTEM_LABEL[r.system],
      countList(r.commandsPerChunk.producer, 5),
      countList(r.commandsPerChunk.worker, 5),
      countList(redisUs(r.runs), 5, (v) => v.toFixed(2)).replace(/^[^:]*: /, ''),
    ]),
  )
}
