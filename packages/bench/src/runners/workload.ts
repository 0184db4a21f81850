/**
 * The producer workloads, shared by the producer runners of every system (Hedgeyard, BullMQ, the
 * baselines and floors) so all send the same jobs in the same way: a bulk of no-op jobs,
 * sequential submit-and-await, and an open loop
 * at a fixed rate whose latencies count from each request's scheduled send time (a late send
 * is charged to the system, as a user would see it: no coordinated omission).
 */
import { performance } from 'node:perf_hooks'
import { cpuSinceUs, emit, nowNs, type RedisTraffic, serveCommands } from './runner-io.js'

/** What a producer runner does when told `go` (and, smaller, when told `warmup`). */
export type Workload =
  | { kind: 'bulk'; jobs: number; warmupJobs: number }
  | { kind: 'sequential'; jobs: number; warmupJobs: number }
  | { kind: 'open'; ratePerSecond: number; durationMs: number; warmupMs: number }

/** How a producer runner sends jobs. */
export interface ProducerClient {
  /** Sends job `n` and resolves when its result is back. */
  submitAndWait(n: number): Promise<unknown>
  /**
   * Sends jobs `first`..`first + count - 1` at once. Hedgeyard resolves when every result is
   * back; BullMQ when every job is queued (the worker reports when they are done).
   */
  submitBulk(first: number, count: number): Promise<void>
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
