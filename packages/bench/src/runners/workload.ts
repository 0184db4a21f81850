/**
 * The producer workloads, shared by the producer runners of every system (Hedgeyard, BullMQ, the
 * baselines and floors) so all send the same jobs in the same way: a bulk of no-op jobs,
 * sequential submit-and-await, an open loop at a fixed rate whose latencies count from each
 * request's scheduled send time (a late send is charged to the system, as a user would see it: no
 * coordinated omission), and suite f's streams, opened at once, each chunk timed from its send on
 * the worker (the chunk carries that time) to its receipt here.
 */
import { performance } from 'node:perf_hooks'
import { seededRandom } from '../stats.js'
import { monotonicUs, type StreamChunkData } from './job-work.js'
import { cpuSinceUs, emit, nowNs, type RedisTraffic, serveCommands } from './runner-io.js'

/** What a producer runner does when told `go` (and, smaller, when told `warmup`). */
export type Workload =
  | { kind: 'bulk'; jobs: number; warmupJobs: number }
  | { kind: 'sequential'; jobs: number; warmupJobs: number }
  | { kind: 'open'; ratePerSecond: number; durationMs: number; warmupMs: number }
  | StreamLoad

/** Suite f: `streams` streams of `chunks` chunks opened at once (after `warmupStreams`). */
export interface StreamLoad {
  kind: 'streams'
  streams: number
  chunks: number
  warmupStreams: number
}

/**
 * The counters of one phase of streams: chunk latencies, chunks per stream, and how many streams
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

  /** What the phase reports: chunks received, the expected ones that never came, the peaks. */
  figures(chunksPerStream: number) {
    const chunks = [...this.#received.values()].reduce((a, b) => a + b, 0)
    const { peakOpen, peakMidStream, misordered } = this
    return {
      chunks,
      missing: this.#received.size * chunksPerStream - chunks,
      peakOpen,
      peakMidStream,
      misordered,
    }
  }
}

/** How a producer runner sends jobs. */
export interface ProducerClient {
  /** Sends job `n` and resolves when its result is back. */
  submitAndWait(n: number): Promise<unknown>
  /**
   * Sends jobs `first`..`first + count - 1` at once. Hedgeyard resolves when every result is
   * back; BullMQ when every job is queued (the worker reports when they are done).
   */
  submitBulk(first: number, count: number): Promise<void>
  /** Suite f: opens streams `first`..`first + count - 1`, reports to `tally`, resolves once all ended. */
  openStreams?(first: number, count: number, chunks: number, tally: StreamTally): Promise<void>
}

/** What one phase measured. */
export interface PhaseResult {
  jobs: number
  startNs: string
  endNs: string
  /** Per-request latency (us): sequential and open loop only. */
  latenciesUs?: number[]
  /** Open loop: how late each request was sent after its scheduled time (us): the load generator's own error. */
  sendLagUs?: number[]
  /**
   * Open loop: each request's latency minus the time its handler took on the worker (us), which
   * the worker returns as the job's result: what the system added around the handler.
   */
  overheadUs?: number[]
  /** Streams: chunks received and missing, peaks of streams open (see StreamTally). */
  chunks?: number
}

/** Runs the warm-up (smaller) or the measured phase of a workload. */
export async function runPhase(
  workload: Workload,
  client: ProducerClient,
  phase: 'warmup' | 'measure',
  firstJob: number,
): Promise<PhaseResult> {
  const isWarmup = phase === 'warmup'
  switch (workload.kind) {
    case 'streams': {
      const streams = isWarmup ? workload.warmupStreams : workload.streams
      const tally = new StreamTally()
      if (!client.openStreams) throw new Error('this producer opens no streams')
      const startNs = nowNs()
      await client.openStreams(firstJob, streams, workload.chunks, tally)
      const { latenciesUs } = tally
      return { jobs: streams, startNs, endNs: nowNs(), latenciesUs, ...tally.figures(workload.chunks) }
    }
    case 'bulk': {
      const jobs = isWarmup ? workload.warmupJobs : workload.jobs
      const startNs = nowNs()
      await client.submitBulk(firstJob, jobs)
      return { jobs, startNs, endNs: nowNs() }
    }
    case 'sequential': {
      const jobs = isWarmup ? workload.warmupJobs : workload.jobs
      const latenciesUs = new Array<number>(jobs)
      const startNs = nowNs()
      for (let i = 0; i < jobs; i++) {
        const t0 = performance.now()
        await client.submitAndWait(firstJob + i)
        latenciesUs[i] = (performance.now() - t0) * 1_000
      }
      return { jobs, startNs, endNs: nowNs(), latenciesUs }
    }
    case 'open': {
      const durationMs = isWarmup ? workload.warmupMs : workload.durationMs
      const jobs = Math.round((workload.ratePerSecond * durationMs) / 1_000)
      const intervalMs = 1_000 / workload.ratePerSecond
      const offsetsMs = Array.from({ length: jobs }, (_, i) => i * intervalMs)
      const startNs = nowNs()
      const handlerMs = new Array<number>(jobs)
      const { latenciesUs, sendLagUs } = await openLoop(offsetsMs, (i) =>
        client.submitAndWait(firstJob + i).then((value) => {
          handlerMs[i] = typeof value === 'number' ? value : Number.NaN
        }),
      )
      const overheadUs = latenciesUs.map((us, i) => us - (handlerMs[i] as number) * 1_000)
      return {
        jobs,
        startNs,
        endNs: nowNs(),
        latenciesUs,
        sendLagUs,
        ...(overheadUs.every(Number.isFinite) ? { overheadUs } : {}),
      }
    }
  }
}

/** Seeded Poisson arrivals: `jobs` offsets (ms) with exponential gaps of mean 1000 / rate. */
export function poissonOffsetsMs(jobs: number, ratePerSecond: number, seed: number): number[] {
  const random = seededRandom(seed)
  const out = new Array<number>(jobs)
  let t = 0
  for (let i = 0; i < jobs; i++) {
    out[i] = t
    t += (-1_000 / ratePerSecond) * Math.log(1 - random())
  }
  return out
}

/**
 * Sends request `i` at `start + offsetsMs[i]` (timer-driven: every request due when a timer fires
 * goes out in that turn) and resolves when every request has settled. A failed request rejects.
 */
export function openLoop(
  offsetsMs: readonly number[],
  send: (i: number) => Promise<unknown>,
): Promise<{ latenciesUs: number[]; sendLagUs: number[] }> {
  const n = offsetsMs.length
  const latenciesUs = new Array<number>(n)
  const sendLagUs = new Array<number>(n)
  if (n === 0) return Promise.resolve({ latenciesUs, sendLagUs })
  const start = performance.now() + 5
  return new Promise((resolve, reject) => {
    let next = 0
    let settled = 0
    const onDone = (i: number, scheduled: number) => () => {
      latenciesUs[i] = (performance.now() - scheduled) * 1_000
      if (++settled === n) resolve({ latenciesUs, sendLagUs })
    }
    const tick = () => {
      const now = performance.now()
      while (next < n && start + (offsetsMs[next] as number) <= now) {
        const scheduled = start + (offsetsMs[next] as number)
        sendLagUs[next] = (now - scheduled) * 1_000
        send(next).then(onDone(next, scheduled), reject)
        next++
      }
      if (next < n) setTimeout(tick, Math.max(0, start + (offsetsMs[next] as number) - performance.now()))
    }
    setTimeout(tick, Math.max(0, start - performance.now()))
  })
}

/**
 * Serves a producer runner's commands: `warmup` runs the warm-up phase (`warmed`), `go` the
 * measured one (`done` with its timings, latencies, CPU time, the commands it sent and `extra()`),
 * `stop` calls `stop` and exits. The same for every system, so each runs its workload alike.
 */
export function serveProducer(o: {
  name: string
  workload: Workload
  client: ProducerClient
  traffic: { take(): RedisTraffic }
  stop: () => Promise<void> | void
  /** Called when told `go`, before the measured phase starts. */
  beforeGo?: () => void
  extra?: () => object | Promise<object>
}): void {
  let nextJob = 0
  serveCommands(async ({ cmd }) => {
    if (cmd === 'warmup') {
      const warm = await runPhase(o.workload, o.client, 'warmup', nextJob)
      nextJob += warm.jobs
      emit({ type: 'warmed', jobs: warm.jobs })
    } else if (cmd === 'go') {
      o.beforeGo?.()
      o.traffic.take()
      const cpuStart = process.cpuUsage()
      const result = await runPhase(o.workload, o.client, 'measure', nextJob)
      const cpuUs = cpuSinceUs(cpuStart)
      nextJob += result.jobs
      emit({ type: 'done', ...result, cpuUs, ...o.traffic.take(), ...(await o.extra?.()) })
    } else if (cmd === 'stop') {
      await o.stop()
      process.exit(0)
    } else {
      throw new Error(`${o.name}: unknown command '${cmd}'`)
    }
  })
}
