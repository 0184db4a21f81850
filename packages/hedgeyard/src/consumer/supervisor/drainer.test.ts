import { plainDispatchItem } from '@hedgeyard/testing/fake-pool'
import { cleanupPool, client, eventually, redisUrl, uniquePool } from '@hedgeyard/testing/helpers'
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import { decodeEntry, type JobEntry } from '../../protocol/codec.js'
import { CONSUMER_GROUP, type PoolKeys, poolKeys, queueKey, workerKey } from '../../protocol/keys.js'
import { dispatchJobs } from '../../protocol/scripts/dispatch.js'
import { connectReady, createConnection } from '../../redis/connection.js'
import { type DrainableWorker, Drainer } from './drainer.js'
import { Registration } from './registration.js'

const c = client()
const cmd = createConnection(redisUrl(), 'command', 'drainer-test')
afterAll(() => {
  c.disconnect()
  cmd.disconnect()
})

/**
 * A worker loop as the drainer drives it, recording what it was told: its running jobs finish
 * when `finishRunning` is called (never, if it is not).
 */
class FakeWorker implements DrainableWorker {
  readonly calls: string[] = []
  backlog: JobEntry[] = []
  restored: JobEntry[] | undefined
  finishRunning: () => void = () => {}
  readonly #running: Promise<void>

  constructor(
    readonly workerId: string,
    isBusy = false,
  ) {
    this.#running = isBusy
      ? new Promise((resolve) => {
          this.finishRunning = resolve
        })
      : Promise.resolve()
  }

  takeBacklog(): JobEntry[] {
    this.calls.push('takeBacklog')
    const taken = this.backlog
    this.backlog = []
    return taken
  }

  restoreBacklog(entries: JobEntry[]): void {
    this.restored = entries
  }

  async drain(): Promise<void> {
    this.calls.push('drain')
    await this.#running
  }

  async stop(_cmd: unknown, reason: string): Promise<void> {
    this.calls.push(`stop: ${reason}`)
  }
}

const SETTINGS = { drainTimeoutMs: 30_000, deadLetterCap: 100, resultTtlMs: 60_000 }

async function pool(label: string) {
  await connectReady(cmd, 5_000)
  const name = uniquePool(label)
  const keys = poolKeys('hy', name)
  const registration = new Registration(cmd, keys, {
    leaseMs: 60_000,
    host: 'h',
    pid: 1,
    concurrency: 4,
    capacity: 10,
  })
  return { name, keys, registration }
}

/** Queues `n` plain jobs; with one worker registered, they all go to it. */
async function queueJobs(keys: PoolKeys, n: number): Promise<void> {
  const settings = { producerId: 'p', affinityTtlMs: 1_000, resultTtlMs: undefined, seed: 1 }
  const jobs = Array.from({ length: n }, (_, i) => plainDispatchItem(`job-${i}`))
  await dispatchJobs(cmd, keys, settings, jobs)
}

const silent = pino({ level: 'silent' })

describe('Drainer', () => {
  it('takes a worker out of dispatch, hands its unread and read-ahead jobs to a live worker, then deregisters it', async () => {
    const { name, keys, registration } = await pool('drainer')
    await registration.register(['a'])
    await queueJobs(keys, 3)
    await registration.register(['b'])
    // Worker a has read one entry ahead (pending for it) and not started it; two are unread.
    const [[, read] = ['', []]] = (await c.xreadgroup(
      'GROUP',
      CONSUMER_GROUP,
      'a',
      'COUNT',
      1,
      'STREAMS',
      queueKey(keys, 'a'),
      '>',
    )) as [string, [string, string[]][]][]
    const a = new FakeWorker('a')
    a.backlog = read.map(([id, fields]) => decodeEntry(id, fields) as JobEntry)
    const drainer = new Drainer(cmd, keys, registration, [a], SETTINGS, silent)
    expect(drainer.isServing('a')).toBe(true)

    await drainer.drain(['a'])

    expect(a.calls).toEqual(['takeBacklog', 'drain', 'stop: worker closing'])
    // Every entry went to b: none was left for a to run.
    expect(a.restored).toEqual([])
    expect(await c.xlen(queueKey(keys, 'b'))).toBe(3)
    expect(await c.exists(workerKey(keys, 'a'))).toBe(0)
    expect(drainer.leased()).toEqual([])
    await drainer.stopped
    await cleanupPool(c, name)
  })

  it('keeps the worker leased while it drains, waits for its running jobs, and drains it once when asked twice', async () => {
    const { name, keys, registration } = await pool('drainer-twice')
    await registration.register(['a', 'b'])
    const a = new FakeWorker('a', true)
    const b = new FakeWorker('b')
    const drainer = new Drainer(cmd, keys, registration, [a, b], SETTINGS, silent)
    drainer.drainAsked(['a'])
    drainer.drainAsked(['a'])
    const closing = drainer.drain(['a'])
    await eventually(() => a.calls.includes('drain'))
    expect(drainer.leased()).toEqual(['a', 'b'])
    expect(drainer.isServing('a')).toBe(false)
    expect(await c.hget(workerKey(keys, 'a'), 'state')).toBe('draining')
    a.finishRunning()
    await closing
    expect(a.calls.filter((call) => call === 'drain')).toHaveLength(1)
    expect(drainer.leased()).toEqual(['b'])
    expect(drainer.get('a')).toBeUndefined()
    await drainer.drainAll()
    await drainer.stopped
    await cleanupPool(c, name)
  })

  it('stops a worker whose jobs outlast drainTimeoutMs', async () => {
    const { name, keys, registration } = await pool('drainer-timeout')
    await registration.register(['a'])
    const a = new FakeWorker('a', true)
    const drainer = new Drainer(cmd, keys, registration, [a], { ...SETTINGS, drainTimeoutMs: 100 }, silent)
    await drainer.drainAll()
    expect(a.calls).toEqual(['takeBacklog', 'drain', 'stop: worker closing'])
    await drainer.stopped
    await cleanupPool(c, name)
  })
})
