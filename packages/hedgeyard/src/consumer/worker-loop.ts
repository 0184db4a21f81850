import type { Logger } from 'pino'
import type { MetricsSink } from '../observe/metrics-sink.js'
import type { JobEntry } from '../protocol/codec.js'
import type { PoolKeys } from '../protocol/keys.js'
import type { ClaimVerdict } from '../protocol/scripts/claim.js'
import type { Completion } from '../protocol/scripts/complete.js'
import type { Connection, RedisInput } from '../redis/connection.js'
import { replyPrefix } from '../redis/redis-failure.js'
import { EntryReader, type ReadEntries } from './entry-reader.js'
import { JobSlots } from './job-slots.js'
import type { Handler } from './run-job.js'
import type { StreamLimits } from './stream-job.js'

/** What a worker loop asks of the process that runs it: what the workers of a group share. */
export interface LoopHost {
  /** Redis time now, in ms (the local clock corrected by the offset the heartbeat measures). */
  redisNow(): number
  /** Which copies of racing entries (hedged, tied, streamed) still need running. */
  claim(workerId: string, entries: JobEntry[]): Promise<ClaimVerdict[]>
  /** Stores a finished job's outcome, with the others of this turn. */
  complete(completion: Completion): void
  /** Whether an entry's outcome was given and waits to be stored (its job ran: not to run again). */
  isStoring(workerId: string, entryId: string): boolean
  /** Settles once every outcome given is stored, or after `timeoutMs`. */
  completionsStored(timeoutMs: number): Promise<void>
  /** Registers the worker again, after Redis lost its stream or group or another client replaced them. */
  reregister(workerId: string): Promise<void>
}

/** How a worker loop runs its jobs. */
export interface LoopSettings {
  redis: RedisInput
  keys: PoolKeys
  pool: string
  handler: Handler
  concurrency: number
  /** Entries a worker reads ahead beyond its free slots, to start the moment a slot frees. */
  prefetch: number
  blockMs: number
  /** Largest payload run; an entry with a larger one goes to the dead letters. */
  maxPayloadBytes: number
  /** How streamed jobs write their chunks, and the limits of every job's result. */
  stream: StreamLimits
  logger: Logger
  /** Told of each job's outcome, run time and queue wait; none when undefined. */
  metrics: MetricsSink | undefined
}

/** How long a stopping worker waits for its last completions to be stored. */
const COMPLETION_WAIT_MS = 5_000

/**
 * One worker: reads its own stream with XREADGROUP and runs each job with an AbortSignal. It runs
 * at most `concurrency` jobs and holds at most `prefetch` more, read ahead (the backlog): they are
 * queued on this worker anyway, and one read that brings several saves a round trip per job.
 */
export class WorkerLoop {
  readonly workerId: string
  readonly #s: LoopSettings
  readonly #host: LoopHost
  readonly #reader: EntryReader
  readonly #slots: JobSlots
  readonly #logger: Logger
  #isDraining = false
  #isStopped = false
  #done: Promise<void> | undefined

  constructor(workerId: string, settings: LoopSettings, host: LoopHost) {
    this.workerId = workerId
    this.#s = settings
    this.#host = host
    this.#logger = settings.logger.child({ workerId })
    this.#reader = new EntryReader(workerId, settings, this.#logger)
    this.#slots = new JobSlots(workerId, settings, host, this.#logger)
  }

  /** Jobs running now. */
  get inflight(): number {
    return this.#slots.running
  }

  /** Starts the loop; the promise settles when the loop has stopped. */
  start(): Promise<void> {
    this.#done ??= this.#loop()
    return this.#done
  }

  /** Stops reading new entries once the stream is empty; resolves when the loop has ended. */
  async drain(cmd: Connection): Promise<void> {
    this.#isDraining = true
    await this.#reader.unblock(cmd)
    this.#slots.wake()
    await this.#done
  }

  /**
   * Takes the entries read ahead and not started, for a drain to hand them to other workers. The
   * worker is out of dispatch by then and its unread entries were handed back, so nothing new
   * comes in; an entry a read still in flight brings is run here.
   */
  takeBacklog(): JobEntry[] {
    return this.#slots.takeBacklog()
  }

  /** Puts back, oldest first, entries a drain could not hand back (no live worker had room): they run here. */
  restoreBacklog(entries: JobEntry[]): void {
    this.#slots.restoreBacklog(entries)
  }

  /** Stops at once: aborts running jobs (their entries stay pending and are read again on restart). */
  async stop(cmd: Connection, reason: string): Promise<void> {
    this.#isStopped = true
    this.#slots.stop(reason)
    await this.#reader.unblock(cmd)
    this.#slots.wake()
    await this.#done
    this.#reader.disconnect()
  }

  /** Asks a copy to stop (another copy of its job won, or the job was cancelled); its slot is freed at once. */
  cancel(entryId: string, reason: string): void {
    this.#slots.cancel(entryId, reason)
  }

  async #loop(): Promise<void> {
    const slots = this.#slots
    let failures = 0
    let needsPending = true
    while (!this.#isStopped) {
      try {
        await this.#reader.ready()
        // A failed claim leaves its entries pending in Redis, read again here too.
        const hasClaimFailed = slots.takeClaimFailure()
        if (needsPending || hasClaimFailed) {
          // Entries read before a restart or a lost reply stay pending for this consumer: run them first.
          needsPending = false
          slots.addPending(this.#accept(await this.#reader.readPending()))
        }
        slots.fill()
        if (this.#room() <= 0 && !this.#isStopped) await slots.changed()
        if (this.#isStopped) break
        const room = this.#room()
        if (room <= 0) continue
        const entries = this.#accept(await this.#reader.read(room, !this.#isDraining))
        failures = 0
        if (entries.length === 0 && this.#isDraining) {
          if (slots.held === 0) break
          await slots.changed()
          continue
        }
        slots.add(entries)
      } catch (err) {
        if (this.#isStopped) break
        failures++
        needsPending = true
        const prefix = replyPrefix(err)
        if (prefix === 'NOGROUP' || prefix === 'WRONGTYPE') {
          // Redis lost its data, or another client replaced the stream: register replaces it.
          this.#logger.warn({ prefix }, 'stream or consumer group missing or replaced; registering again')
          await this.#host.reregister(this.workerId).catch(() => {})
        } else if (failures === 1 || failures % 20 === 0) {
          this.#logger.warn({ err, failures }, 'reading jobs failed; retrying')
        }
        await new Promise((r) => setTimeout(r, Math.min(100 * failures, 2_000)))
      }
    }
    // Let the jobs still running finish and their completions be stored (bounded: Redis may be gone).
    while (slots.isBusy) await slots.changed()
    await this.#host.completionsStored(COMPLETION_WAIT_MS)
  }

  /** The entries of a read that can run; those that cannot go to the dead letters. */
  #accept(read: ReadEntries): JobEntry[] {
    if (read.rejected !== undefined) this.#slots.reject(read.rejected)
    return read.entries
  }

  /** Entries the next read may bring: free slots plus the read-ahead, less what is held already. */
  #room(): number {
    // A draining worker reads no further ahead than its free slots: what it does not read is
    // handed back to live workers.
    const limit = this.#isDraining ? this.#s.concurrency : this.#s.concurrency + this.#s.prefetch
    return limit - this.#slots.held
  }
}
