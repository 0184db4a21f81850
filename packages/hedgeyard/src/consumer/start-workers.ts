import { notify } from '../observe/metrics-sink.js'
import { claimJobs } from '../protocol/scripts/claim.js'
import { type Connection, connectReady, createConnection, redisFailure } from '../redis/connection.js'
import { ChunkWriter } from './chunk-writer.js'
import { Completer } from './completer.js'
import { CancelSubscriber } from './supervisor/cancel-subscriber.js'
import { Drainer } from './supervisor/drainer.js'
import { beatIntervalMs, Heartbeat } from './supervisor/heartbeat.js'
import { Recoverer } from './supervisor/recoverer.js'
import { Registration } from './supervisor/registration.js'
import { type LoopHost, type LoopSettings, WorkerLoop } from './worker-loop.js'
import { checkWorkerOptions, type WorkerOptions, type WorkerSettings } from './worker-options.js'

export type { BreakerOptions, WorkerOptions } from './worker-options.js'
export { WORKER_DEFAULTS } from './worker-options.js'

/** Workers running in this process. */
export interface WorkerGroup {
  readonly workerIds: readonly string[]
  /**
   * Drains gracefully: no new jobs, unread ones handed to other workers, running ones finish (up
   * to drainTimeoutMs), then the workers deregister.
   */
  close(): Promise<void>
  /** Settles when every worker has stopped: after `close()`, or after each was drained remotely (`hedgeyard drain`). */
  readonly done: Promise<void>
}

/** How long a connection of the group may take to become ready at start. */
const CONNECT_TIMEOUT_MS = 5_000

/**
 * Starts `count` workers of a pool in this process and registers them in Redis. Each duty is a
 * unit of its own, composed here: the registration (and the clock offset), the heartbeat, the
 * recoverer of dead workers' jobs, the drainer, the cancel subscriber, and one loop per worker.
 * A start that fails leaves nothing behind: no connection open, no worker registered.
 * @throws HedgeyardError INVALID_ARGUMENT for a bad option, REDIS_UNAVAILABLE when Redis cannot be reached.
 */
export async function startWorkers<Req = unknown, Res = unknown>(
  options: WorkerOptions<Req, Res>,
): Promise<WorkerGroup> {
  const s = checkWorkerOptions(options)
  const { keys, logger, workerIds } = s
  const cmd = createConnection(s.redis, 'command', `hy:workers:${s.idPrefix}`)
  try {
    await connectReady(cmd, CONNECT_TIMEOUT_MS)
  } catch (err) {
    cmd.disconnect()
    throw err
  }
  const registration = new Registration(cmd, keys, {
    leaseMs: s.leaseMs,
    host: s.host,
    pid: process.pid,
    concurrency: s.concurrency,
    capacity: s.concurrency + s.queueCapacity,
    breakerFailures: s.breakerFailures,
    breakerCoolOffMs: s.breakerCoolOffMs,
  })
  const completer = new Completer(cmd, keys, s.resultTtlMs, s.deadLetterCap, logger)
  const chunks = new ChunkWriter(cmd, keys, s.resultTtlMs, logger)
  const host: LoopHost = {
    redisNow: () => registration.clock.now(),
    claim: (workerId, entries) => claimJobs(cmd, keys, s.resultTtlMs, workerId, entries),
    complete: (completion) => completer.complete(completion),
    isStoring: (workerId, entryId) => completer.isStoring(workerId, entryId),
    completionsStored: (timeoutMs) => completer.idle(timeoutMs),
    reregister: (workerId) => registration.register([workerId]),
  }
  const settings = loopSettings(s, chunks)
  // Made, not connected: a loop's connection opens when the loop starts.
  const loops = workerIds.map((id) => new WorkerLoop(id, settings, host))
  const drainer = new Drainer(cmd, keys, registration, loops, s, logger)
  const heartbeat = new Heartbeat(registration, drainer, logger)
  const recoverer = new Recoverer(cmd, keys, { ...s, intervalMs: beatIntervalMs(s.leaseMs) }, logger)
  const cancels = new CancelSubscriber(
    s.redis,
    keys,
    `hy:cancels:${s.idPrefix}`,
    (workerId, entryId, reason) => drainer.get(workerId)?.cancel(entryId, reason),
  )

  // Cancels are heard before any job can be queued on these workers; the heartbeat beats from
  // the moment they are registered.
  try {
    await cancels.start(workerIds)
  } catch (err) {
    await abandonStart(cmd, loops)
    throw redisFailure(err, 'subscribing to cancels')
  }
  try {
    await registration.register(workerIds)
  } catch (err) {
    cancels.stop()
    // The script may have run and its reply been lost: the workers would stay registered with
    // no heartbeat, taking jobs until their lease ran out. Deregistering them is harmless if not.
    await connectReady(cmd, CONNECT_TIMEOUT_MS)
      .then(() => registration.deregister(workerIds))
      .catch(() => {})
    await abandonStart(cmd, loops)
    throw redisFailure(err, 'registering workers')
  }
  // Started in this order on the same period, each rescue goes out right after the heartbeat
  // that renews this process's own leases.
  heartbeat.start()
  recoverer.start()
  for (const loop of loops) {
    loop.start().catch((err: unknown) => logger.error({ err, workerId: loop.workerId }, 'worker loop failed'))
  }
  logger.info({ workerIds, concurrency: s.concurrency, queueCapacity: s.queueCapacity }, 'workers started')

  const done = drainer.stopped.then(async () => {
    await Promise.all([heartbeat.stop(), recoverer.stop()])
    completer.close()
    chunks.close()
    cancels.stop()
    cmd.disconnect()
  })
  if (s.metrics !== undefined) {
    const { metrics, pool, idPrefix, concurrency } = s
    const capacity = concurrency + s.queueCapacity
    notify(metrics, 'workersStarted', pool, idPrefix, () =>
      loops.map((loop) => ({ workerId: loop.workerId, inflight: loop.inflight, capacity, concurrency })),
    )
    void done.then(() => notify(metrics, 'workersStopped', pool, idPrefix))
  }
  return {
    workerIds,
    close: async () => {
      await drainer.drainAll()
      await done
    },
    done,
  }
}

function loopSettings(s: WorkerSettings, writer: ChunkWriter): LoopSettings {
  return {
    redis: s.redis,
    keys: s.keys,
    pool: s.pool,
    handler: s.handler,
    concurrency: s.concurrency,
    prefetch: s.prefetch,
    blockMs: s.blockMs,
    maxPayloadBytes: s.maxPayloadBytes,
    stream: {
      writer,
      maxChunks: s.maxChunks,
      maxChunkBytes: s.maxChunkBytes,
      maxResultBytes: s.maxResultBytes,
    },
    logger: s.logger,
    metrics: s.metrics,
  }
}

/** Closes what a start that failed had opened: the loops' connections (never started) and its own. */
async function abandonStart(cmd: Connection, loops: readonly WorkerLoop[]): Promise<void> {
  for (const loop of loops) await loop.stop(cmd, 'workers failed to start')
  cmd.disconnect()
}
