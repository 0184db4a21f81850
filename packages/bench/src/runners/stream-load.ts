/**
 * The producer side of suite f, shared by the streaming producer runners of both systems: open
 * many streams at once, take every chunk as it arrives, and time each chunk from its `yield` on
 * the worker (the chunk carries that time) to its receipt here.
 */
import { cpuSinceUs, emit, nowNs, type RedisTraffic, serveCommands } from './runner-io.js'

/** What the producer runner is told to do (JSON, in its config). */
export interface StreamLoad {
  /** Streams opened at once in the measured phase. */
  streams: number
  /** Chunks each stream's handler yields. */
  chunks: number
  warmupStreams: number
}

/** The request of a streamed job: its number and how many chunks its handler yields. */
export interface StreamRequest {
  n: number
  chunks: number
}

/** What a handler yields: its place in the stream and when it was yielded. */
export interface StreamChunkData {
  i: number
  /** CLOCK_MONOTONIC in microseconds: comparable between processes of one host. */
  t: number
}

/** Microseconds on CLOCK_MONOTONIC (`process.hrtime`), the same clock in every process. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1_000n)
}

/** How a streaming producer opens streams; it reports chunks and ends to the {@link StreamTally}. */
export interface StreamClient {
  /** Opens streams `first`..`first + count - 1` and resolves once every one has ended. */
  openAll(first: number, count: number, chunks: number, tally: StreamTally): Promise<void>
}

/**
 * The producer's counters of one phase: chunk latencies, chunks per stream, and how many streams
 * were open at once (opened and not ended) and mid-stream at once (a chunk received, not ended).
 */
export class StreamTally {
  readonly latenciesUs: number[] = []
  #open = 0
  #midStream = 0
  #received = new Map<number, number>()
  peakOpen = 0
  peakMidStream = 0
  /** Chunks that came out of order or twice (by their `i`). */
  misordered = 0

  opened(n: number): void {
    this.#received.set(n, 0)
    this.peakOpen = Math.max(this.peakOpen, ++this.#open)
  }

  chunk(n: number, data: StreamChunkData): void {
    this.latenciesUs.push(monotonicUs() - data.t)
    const before = this.#received.get(n) ?? 0
    if (before === 0) this.peakMidStream = Math.max(this.peakMidStream, ++this.#midStream)
    if (data.i !== before + 1) this.misordered++
    this.#received.set(n, before + 1)
  }

  ended(n: number): void {
    this.#open--
    if ((this.#received.get(n) ?? 0) > 0) this.#midStream--
  }

  /** Chunks received, and how many of the expected ones never came. */
  counts(chunksPerStream: number): { chunks: number; missing: number } {
    let chunks = 0
    for (const c of this.#received.values()) chunks += c
    return { chunks, missing: this.#received.size * chunksPerStream - chunks }
  }
}

/**
 * Serves a streaming producer runner's commands: `warmup` opens the warm-up streams (`warmed`),
 * `go` the measured ones (`done`: streams as `jobs`, the chunks, their latencies, the peaks, CPU
 * time and the commands sent), `stop` calls `stop` and exits.
 */
export function serveStreamProducer(o: {
  name: string
  load: StreamLoad
  client: StreamClient
  traffic: { take(): RedisTraffic }
  stop: () => Promise<void> | void
}): void {
  let next = 0
  serveCommands(async ({ cmd }) => {
    if (cmd === 'warmup') {
      await o.client.openAll(next, o.load.warmupStreams, o.load.chunks, new StreamTally())
      next += o.load.warmupStreams
      emit({ type: 'warmed', jobs: o.load.warmupStreams })
    } else if (cmd === 'go') {
      const tally = new StreamTally()
      o.traffic.take()
      const cpuStart = process.cpuUsage()
      const startNs = nowNs()
      await o.client.openAll(next, o.load.streams, o.load.chunks, tally)
      const endNs = nowNs()
      const cpuUs = cpuSinceUs(cpuStart)
      next += o.load.streams
      emit({
        type: 'done',
        jobs: o.load.streams,
        startNs,
        endNs,
        latenciesUs: tally.latenciesUs,
        ...tally.counts(o.load.chunks),
        peakOpen: tally.peakOpen,
        peakMidStream: tally.peakMidStream,
        misordered: tally.misordered,
        cpuUs,
        ...o.traffic.take(),
      })
    } else if (cmd === 'stop') {
      await o.stop()
      process.exit(0)
    } else {
      throw new Error(`${o.name}: unknown command '${cmd}'`)
    }
  })
}
