/** Suite f's tables, in Markdown: printed by the run and written into docs/benchmarks.md. */
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

function median(values: readonly number[]): number {
  return spread(values).median
}

/** Rate, latency per chunk, streams open at once and CPU per chunk. */
export function streamingTable(s: StreamingResult): string {
  return markdownTable(
    [
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
    s.rows.map((r) => [
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

/** A count per chunk: `1.00`, or `1/50` when one command serves many chunks. */
const count = (v: number) => (v >= 0.1 ? v.toFixed(2) : v > 0 ? `1/${Math.round(1 / v)}` : '0')
const usec = (v: number) => v.toFixed(2)

/**
 * `12.3: a 10.0, b 2.3`: the total, then the largest items; per chunk, medians of the runs. No
 * total for Redis's time: `evalsha` includes the commands its scripts run, listed again.
 */
function perChunkList(
  list: readonly Record<string, number>[],
  show: (v: number) => string,
  hasTotal = true,
): string {
  const names = new Set(list.flatMap((c) => Object.keys(c)))
  const items = [...names]
    .map((n) => ({ n, v: median(list.map((c) => c[n] ?? 0)) }))
    .filter((x) => x.v > 0)
    .sort((a, b) => b.v - a.v)
  const total = items.reduce((sum, x) => sum + x.v, 0)
  const top = items
    .slice(0, 5)
    .map((x) => `${x.n.toLowerCase()} ${show(x.v)}`)
    .join(', ')
  return hasTotal ? `${show(total)}: ${top}` : top
}

/** Commands each process sent per chunk, and where Redis spent its time per chunk. */
export function streamingCommandsTable(s: StreamingResult): string {
  const redisUs = (runs: readonly StreamingRun[]) =>
    runs.map((run) => Object.fromEntries(Object.entries(run.redisCallsPerChunk).map(([k, v]) => [k, v.usec])))
  return markdownTable(
    [
      'system',
      'producer sends per chunk',
      'worker sends per chunk',
      'Redis usec per chunk by command (INFO commandstats, top 5)',
    ],
    s.rows.map((r) => [
      SYSTEM_LABEL[r.system],
      perChunkList(
        r.runs.map((x) => x.clientCommandsPerChunk.producer),
        count,
      ),
      perChunkList(
        r.runs.map((x) => x.clientCommandsPerChunk.worker),
        count,
      ),
      perChunkList(redisUs(r.runs), usec, false),
    ]),
  )
}
