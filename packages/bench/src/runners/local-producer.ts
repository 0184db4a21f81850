/**
 * The floor of the open loop: the load generator and the job body in one process, with no Redis,
 * no second process and no dispatch at all. Each request runs the job body right here, under the
 * concurrency limit a worker would have, and returns its time as the workers of the other systems
 * do. What this process measures is what the machine's timers and scheduling give a request before
 * any dispatcher adds to it: a latency bar below it cannot be met on this machine.
 *
 *   node dist/runners/local-producer.js '<json LocalProducerConfig>'
 *
 * Messages as for the Hedgeyard producer (`ready`, `warmup`, `go`, `stop`); its `done` also carries
 * the worker's report (`worker`), since the jobs run in this process.
 */
import { performance } from 'node:perf_hooks'
import { jobWork, type WorkSpec } from './job-work.js'
import { emit, fail, readConfig } from './runner-io.js'
import { WorkerTally } from './worker-report.js'
import { type ProducerClient, serveProducer, type Workload } from './workload.js'

/** What the parent passes as the first argument (JSON). */
export interface LocalProducerConfig {
  workload: Workload
  concurrency: number
  work: WorkSpec
}

/** The id the tally counts this process's jobs under. */
export const LOCAL_WORKER_ID = 'local'

const noTraffic = { take: () => ({ commands: {}, writes: 0, reads: 0 }) }

async function main(): Promise<void> {
  const config = readConfig<LocalProducerConfig>()
  const tally = new WorkerTally(noTraffic)
  const body = jobWork(config.work, 1)
  let running = 0
  const queued: (() => void)[] = []

  // A finished job hands its slot straight to the oldest waiting one, so none can slip in between.
  const run = async (): Promise<number> => {
    if (running < config.concurrency) running++
    else await new Promise<void>((resolve) => queued.push(resolve))
    const startedMs = performance.now()
    try {
      await body()
    } finally {
      const next = queued.shift()
      if (next) next()
      else running--
    }
    const elapsed = performance.now() - startedMs
    tally.worked(LOCAL_WORKER_ID, elapsed)
    tally.done(LOCAL_WORKER_ID)
    return elapsed
  }
  const client: ProducerClient = {
    submitAndWait: () => run(),
    async submitBulk(_first, count) {
      await Promise.all(Array.from({ length: count }, run))
    },
  }
  emit({ type: 'ready' })

  serveProducer({
    name: 'local-producer',
    workload: config.workload,
    client,
    traffic: noTraffic,
    stop() {},
    beforeGo: () => tally.mark(),
    // The jobs ran in this process, so their CPU time is already in the producer's.
    extra: async () => ({ worker: { ...(await tally.report(0)), cpuUs: 0 } }),
  })
}

main().catch(fail)
