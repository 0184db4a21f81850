import { parseDispatchReply } from 'hedgeyard/internal'
import { type BenchPool, checkPool, createBenchPool, jobPayload } from './bench-pool.js'
import { type HealthProbe, probeHealth } from './health-probe.js'
import { type BenchConnection, type DispatchJob, dispatchArgs } from './library-scripts.js'
import { machineBusySeconds, machineStolenSeconds, waitForQuiet } from './machine-load.js'
import { commandUsec, redisCpuSeconds } from './redis-info.js'
import { seededRandom } from './stats.js'

/**
 * What is dispatched: jobs per script call, and whether every job carries a session. A floor
 * variant calls suite d's floor script (dispatch-floor.ts) instead of the library's.
 */
export interface Variant {
  name: string
  batch: number
  hasSessions: boolean
  isFloor?: boolean
}

/** How much to dispatch in one round. */
export interface RoundSettings {
  /** Timed jobs per pool size. */
  jobs: number
  /** Jobs per block: the sizes take turns, one block each, until each has had `jobs`. */
  blockJobs: number
  /** Untimed jobs per pool size before the blocks. */
  warmupJobs: number
  /** Script calls in flight at once on the one connection (each its own write, as in the library). */
  inFlight: number
  /** Distinct sessions the jobs of a session variant are drawn from. */
  sessions: number
  affinityTtlMs: number
  /** Before timing, wait (up to quietWaitMs) until other processes keep fewer CPUs busy than this. */
  quietLoad: number
  quietWaitMs: number
}

/** What one round measured for one pool size (the round's probe and load are shared by its sizes). */
export interface Measurement {
  variant: string
  /** Measured with the floor script, not the library's (see dispatch-floor.ts). */
  isFloor: boolean
  size: number
  repetition: number
  jobs: number
  probe: HealthProbe
  /** Redis process CPU (user + sys, `INFO cpu`) per dispatched job, us. */
  redisCpuUsPerJob: number
  /** Main-thread share of it (`used_cpu_*_main_thread`), us. */
  redisMainThreadCpuUsPerJob: number
  /** Time inside the dispatch script per job (`INFO commandstats`, evalsha usec), us. */
  scriptUsPerJob: number
  jobsPerSecond: number
  /**
   * CPUs that other processes kept busy during the round (machine busy time from /proc/stat
   * minus this process and Redis): the machine is shared, so each round says.
   */
  otherCpuLoad: number
  /** CPUs the hypervisor took from this VM during the round (/proc/stat `steal`; NaN when unknown). */
  stolenCpus: number
  /** CPUs busy on the machine in the last half second before timing (see waitForQuiet). */
  loadBefore: number
  affinityHitRate: number
  /** usec per job of every command in `INFO commandstats` (scripts' inner commands included). */
  commandUsPerJob: Record<string, number>
  /** Outcomes other than a queued job, script errors, broken invariants: empty when all is well. */
  problems: string[]
}

const JOB_TIMEOUT_MS = 30_000
const PRODUCER_ID = 'bench-producer'

/** A ULID-shaped id (26 characters), so stream entries have their real size. */
function jobId(n: number): string {
  return `01JBENCH${n.toString(36).toUpperCase().padStart(18, '0')}`
}

/** One dispatch call: its arguments, how many jobs it carries, and its records (for its reply). */
interface Call {
  args: (string | number)[]
  jobs: number
  records: number[]
}

/** The script calls of a run, built before timing so the clock sees the round trips, not the setup. */
function buildCalls(
  pool: BenchPool,
  variant: Variant,
  settings: RoundSettings,
  jobs: number,
  firstJob: number,
  seed: number,
): Call[] {
  const random = seededRandom(seed)
  const calls: Call[] = []
  for (let start = 0; start < jobs; start += variant.batch) {
    const n = Math.min(variant.batch, jobs - start)
    const batch: DispatchJob[] = []
    for (let i = 0; i < n; i++) {
      const job = firstJob + start + i
      const session = variant.hasSessions ? `sess-${Math.floor(random() * settings.sessions)}` : ''
      batch.push({ jobId: jobId(job), session, payload: jobPayload(job), excluded: '' })
    }
    // What the library's DispatchBatcher sends for these jobs.
    const seed = Math.floor(random() * 2 ** 31)
    const call = {
      producerId: PRODUCER_ID,
      seed,
      affinityTtlMs: settings.affinityTtlMs,
      timeoutMs: JOB_TIMEOUT_MS,
    }
    calls.push({ ...dispatchArgs(pool.keys, call, batch), jobs: n })
  }
  return calls
}

/** Sends the calls with `inFlight` of them outstanding at a time; counts affinity hits and failures. */
async function sendCalls(
  conn: BenchConnection,
  calls: Call[],
  inFlight: number,
  isFloor: boolean,
): Promise<{ hits: number; problems: string[] }> {
  const script = isFloor ? conn.dispatchFloor.bind(conn) : conn.dispatch.bind(conn)
  let next = 0
  let hits = 0
  const problems: string[] = []
  const note = (problem: string) => {
    if (!problems.includes(problem)) problems.push(problem)
  }
  const lane = async (): Promise<void> => {
    for (let call = calls[next++]; call !== undefined; call = calls[next++]) {
      const reply = await script(...call.args)
      try {
        for (const outcome of parseDispatchReply(reply, call.records, call.jobs)) {
          if (outcome.status !== 'queued') note(`dispatch answered ${outcome.status}`)
          else if (outcome.isAffinityHit) hits++
        }
      } catch (err) {
        note((err as Error).message)
      }
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
  return { hits, problems }
}

/** What the blocks of one pool size add up to. */
interface Totals {
  redisSeconds: number
  mainThreadSeconds: number
  wallSeconds: number
  hits: number
  usec: Map<string, number>
}

/**
 * One round of a variant: a fresh Redis dataset with one pool per size, a warm-up of each, then
 * the sizes take turns in blocks of `blockJobs` jobs (the first size rotating from block to
 * block), each block timed on its own. The machine drifts between speeds over seconds; blocks of a
 * few tens of milliseconds put every size through the same phases.
 */
export async function measureRound(
  conn: BenchConnection,
  variant: Variant,
  sizes: readonly number[],
  repetition: number,
  settings: RoundSettings,
): Promise<Measurement[]> {
  await conn.call('FLUSHALL', 'SYNC')
  const isFloor = variant.isFloor === true
  const problems: string[] = []
  const note = (found: readonly string[]) => {
    for (const p of found) if (!problems.includes(p)) problems.push(p)
  }
  const fail = (err: unknown) => {
    note([`dispatch script failed: ${err instanceof Error ? err.message : String(err)}`])
    return { hits: 0, problems: [] }
  }
  const pools: BenchPool[] = []
  const blocks: Call[][][] = []
  for (const size of sizes) {
    const pool = await createBenchPool(conn, `bench-${size}`, size, size)
    pools.push(pool)
    const seed = size * 1_000 + repetition
    const warmup = buildCalls(pool, variant, settings, settings.warmupJobs, 0, seed)
    note((await sendCalls(conn, warmup, settings.inFlight, isFloor).catch(fail)).problems)
    const perSize: Call[][] = []
    for (let done = 0; done < settings.jobs; done += settings.blockJobs) {
      const n = Math.min(settings.blockJobs, settings.jobs - done)
      perSize.push(buildCalls(pool, variant, settings, n, settings.warmupJobs + done, seed + 1 + done))
    }
    blocks.push(perSize)
  }

  const loadBefore = await waitForQuiet(settings.quietLoad, settings.quietWaitMs)
  const probe = await probeHealth(conn)
  const totals: Totals[] = sizes.map(() => ({
    redisSeconds: 0,
    mainThreadSeconds: 0,
    wallSeconds: 0,
    hits: 0,
    usec: new Map(),
  }))
  const roundStart = process.hrtime.bigint()
  const busyBefore = machineBusySeconds()
  const stolenBefore = machineStolenSeconds()
  const ownBefore = process.cpuUsage()
  const blockCount = blocks[0]?.length ?? 0
  for (let b = 0; b < blockCount; b++) {
    for (let turn = 0; turn < sizes.length; turn++) {
      const s = (b + turn) % sizes.length
      const calls = blocks[s]?.[b] ?? []
      const t = totals[s] as Totals
      await conn.config('RESETSTAT')
      const cpuBefore = await redisCpuSeconds(conn)
      const started = process.hrtime.bigint()
      const sent = await sendCalls(conn, calls, settings.inFlight, isFloor).catch(fail)
      t.wallSeconds += Number(process.hrtime.bigint() - started) / 1e9
      const cpuAfter = await redisCpuSeconds(conn)
      t.redisSeconds += cpuAfter.total - cpuBefore.total
      t.mainThreadSeconds += cpuAfter.mainThread - cpuBefore.mainThread
      t.hits += sent.hits
      note(sent.problems)
      for (const [name, us] of await commandUsec(conn)) t.usec.set(name, (t.usec.get(name) ?? 0) + us)
    }
  }
  const roundSeconds = Number(process.hrtime.bigint() - roundStart) / 1e9
  const own = process.cpuUsage(ownBefore)
  const redisSeconds = totals.reduce((sum, t) => sum + t.redisSeconds, 0)
  const otherSeconds = machineBusySeconds() - busyBefore - (own.user + own.system) / 1e6 - redisSeconds
  const otherCpuLoad = Math.max(0, otherSeconds / roundSeconds)
  const stolenCpus = (machineStolenSeconds() - stolenBefore) / roundSeconds

  if (problems.length === 0) {
    for (const pool of pools) {
      note(await checkPool(conn, pool, settings.warmupJobs + settings.jobs))
    }
  }
  const perJob = (x: number) => x / settings.jobs
  return sizes.map((size, s) => {
    const t = totals[s] as Totals
    const commandUsPerJob: Record<string, number> = {}
    for (const [name, us] of t.usec) commandUsPerJob[name] = perJob(us)
    return {
      variant: variant.name,
      isFloor,
      size,
      repetition,
      jobs: settings.jobs,
      probe,
      redisCpuUsPerJob: perJob(t.redisSeconds * 1e6),
      redisMainThreadCpuUsPerJob: perJob(t.mainThreadSeconds * 1e6),
      scriptUsPerJob: perJob(t.usec.get('evalsha') ?? 0),
      jobsPerSecond: settings.jobs / t.wallSeconds,
      otherCpuLoad,
      stolenCpus,
      loadBefore,
      affinityHitRate: variant.hasSessions ? t.hits / settings.jobs : 0,
      commandUsPerJob,
      problems,
    }
  })
}
