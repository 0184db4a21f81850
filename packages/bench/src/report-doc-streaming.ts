/** Suite f's section of docs/benchmarks.md: how streaming is measured, and this run's tables. */
import { MEMORY_RETURN_SHARE } from './stream-memory.js'
import { streamingCommandsTable, streamingMemoryTable, streamingTable } from './streaming-tables.js'
import type { StreamingResult } from './suite-streaming.js'
import { SYSTEM_LABEL } from './systems.js'

export function renderStreamingSection(s: StreamingResult): string[] {
  const t = s.settings
  const lost = s.rows.flatMap((r) =>
    r.runs
      .filter((x) => x.missingChunks > 0 || x.misordered > 0)
      .map(
        (x) =>
          `${SYSTEM_LABEL[r.system]}, repetition ${x.repetition}: ${x.missingChunks} chunk(s) never came, ${x.misordered} out of order`,
      ),
  )
  return [
    '## f. Streaming',
    '',
    `${t.streams.toLocaleString('en')} streams of ${t.chunks} chunks, opened at once by one producer process after a warm-up of`,
    `${t.warmupStreams}, against one worker process whose single worker has concurrency ${t.concurrency}, so every stream runs at once:`,
    'the layout of the other suites, the same for both systems. The handler sends its chunks one after',
    'another with no sleep, so the figures are those of the machinery. Each chunk is `{ i, t }`, `t` being',
    '`process.hrtime` (CLOCK_MONOTONIC, one clock for every process of the host) when it was sent; the',
    "consumer subtracts it from the time it takes the chunk out of its loop: that is a chunk's latency.",
    '*Hedgeyard*: an async generator handler under `startWorkers({ count: 1, concurrency,',
    `resultTtlMs: ${t.resultTtlMs} })\`; the producer calls \`dispatcher.stream(req)\` for every stream in one turn, reads`,
    'each with `for await`, then awaits `stream.result`. A handler has one chunk in flight: the next',
    '`yield` resumes once Redis has taken the last. *BullMQ*, its closest equivalent: the processor calls',
    '`await job.updateProgress(chunk)` per chunk; the producer adds the jobs with `addBulk` and follows them',
    "through one `QueueEvents`, `progress` for the chunks and `completed` for the end. BullMQ's event",
    'stream keeps about 10,000 events (its default), so a listener that falls that far behind loses',
    `chunks; ${lost.length === 0 ? 'none was lost in these runs' : `lost or misordered in these runs: ${lost.join('; ')}`}.`,
    'Chunks/s count from the first send to the end of the last stream. *Open at once*: the most streams',
    'the producer process had opened and not yet seen end, and of those, the most that were mid-stream',
    '(a chunk received, no end). CPU per chunk as CPU per job in suite a, over the chunks. Memory is',
    "`used_memory` (`INFO memory`): the baseline once the warm-up's data has expired (its TTL waited out,",
    'then a `SCAN` so that Redis drops the expired keys it meets), the peak of samples taken every 20 ms',
    'during the run, and the figure after waiting out the TTL again after the run, the processes still up.',
    "Hedgeyard keeps each job's chunks in its output stream until that TTL (so a stream can be resumed);",
    'BullMQ keeps no chunk beyond its capped event stream. `used_memory` of an idle Redis moves here by',
    "tens to a few hundred KiB (client buffers, and Redis's own allocations that belong to no key), so the",
    `memory target reads "back to the baseline" as at most ${MEMORY_RETURN_SHARE * 100}% of the peak's growth left, in every run, and no`,
    'key of the run left without a TTL. Order, quiet wait, probe and retries as in [Method](#method).',
    '',
    streamingTable(s),
    '',
    streamingMemoryTable(s),
    '',
    '**Commands per chunk.** What each process sent (counted in the process, on every ioredis',
    'connection), and where Redis spent its time (`INFO commandstats` usec per chunk; `evalsha` includes',
    'the commands its scripts run, which are listed again).',
    '',
    streamingCommandsTable(s),
  ]
}
