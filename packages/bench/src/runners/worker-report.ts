import { percentile } from '../latency.js'
import { cpuSinceUs, emit, nowNs, type RedisTraffic, serveCommands, Waiter } from './runner-io.js'

/** What a worker process reports: counters since the last mark. */
export interface WorkerReport extends RedisTraffic {
  type: 'report'
  processed: number
  /** CPU time of this process since the mark (us). */
  cpuUs: number
  /** hrtime (ns, as a string) when the last job since the mark finished; '0' for none. */
  lastDoneNs: string
  /** Jobs processed per worker id. */
  perWorker: Record<string, number>
  /** Time spent in job bodies per worker id (ms), for the utilisation actually reached. */
  busyMsPerWorker: Record<string, number>
  /** How long the job bodies took (ms; sleeps overshoot their timers): p50, p99, max; null for no-ops. */
  workMs: { p50: number; p99: number; max: number } | null
}

/** p50, p99 and max of the job bodies' durations. */
function workPercentiles(samples: number[]): WorkerReport['workMs'] {
  if (samples.length === 0) return null
  const sorted = [...samples].sort((a, b) => a - b)
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[sorted.length - 1] as number,
  }
}

/**
 * The counters of a worker process since the last `mark`, kept the same way for every system:
 * jobs done per worker, when the last one finished, how long the timed job bodies took, CPU time
 * and Redis traffic.
 */
export class WorkerTally {
  #processed = 0
  #lastDoneNs = '0'
  #perWorker = new Map<string, number>()
  #busyMs = new Map<string, number>()
  #workSamples: number[] = []
  #cpuStart = process.cpuUsage()
  readonly #waiter = new Waiter()
  readonly #traffic: { take(): RedisTraffic }

  constructor(traffic: { take(): RedisTraffic }) {
    this.#traffic = traffic
  }

  /** A timed job body on `workerId` took `ms`. */
  worked(workerId: string, ms: number): void {
    this.#busyMs.set(workerId, (this.#busyMs.get(workerId) ?? 0) + ms)
    this.#workSamples.push(ms)
  }

  /** A job on `workerId` is done (each runner says when: see its header). */
  done(workerId: string): void {
    this.#processed++
    this.#perWorker.set(workerId, (this.#perWorker.get(workerId) ?? 0) + 1)
    this.#lastDoneNs = nowNs()
    this.#waiter.notify()
  }

  mark(): void {
    this.#processed = 0
    this.#lastDoneNs = '0'
    this.#perWorker = new Map()
    this.#busyMs = new Map()
    this.#workSamples = []
    this.#traffic.take()
    this.#cpuStart = process.cpuUsage()
  }

  /** The report, once at least `atLeast` jobs are done since the mark. */
  async report(atLeast: number): Promise<WorkerReport> {
    await this.#waiter.until(() => this.#processed >= atLeast)
    return {
      type: 'report',
      processed: this.#processed,
      cpuUs: cpuSinceUs(this.#cpuStart),
      lastDoneNs: this.#lastDoneNs,
      perWorker: Object.fromEntries(this.#perWorker),
      busyMsPerWorker: Object.fromEntries(this.#busyMs),
      workMs: workPercentiles(this.#workSamples),
      ...this.#traffic.take(),
    }
  }
}

/**
 * Serves a worker runner's commands: `mark` resets the tally (`marked`), `report` answers once
 * `atLeast` jobs are done (after `check`, which may throw to fail the run), `stop` calls `stop`
 * and exits.
 */
export function serveWorker(o: {
  name: string
  tally: WorkerTally
  stop: () => Promise<void> | void
  check?: () => void
}): void {
  serveCommands(async ({ cmd, atLeast }) => {
    if (cmd === 'mark') {
      o.tally.mark()
      emit({ type: 'marked' })
    } else if (cmd === 'report') {
      const report = await o.tally.report(atLeast ?? 0)
      o.check?.()
      emit(report)
    } else if (cmd === 'stop') {
      await o.stop()
      process.exit(0)
    } else {
      throw new Error(`${o.name}: unknown command '${cmd}'`)
    }
  })
}
