/**
 * Scaling over Redis Cluster primaries with cells (docs/scaling.md), printed as its tables:
 *
 * 1. primaries: one logical pool of as many cells as primaries (1, 2, 3), each cell on its own
 *    primary; Redis CPU per job on each primary (`INFO cpu` and `INFO commandstats` of each node
 *    before and after) and each primary's share of the work.
 * 2. cells: 1, 2, 4 and 8 cells on one primary: Redis, producer and worker CPU per job.
 * 3. routing: suite e's workload (8 workers, one 3x slower, Poisson arrivals at 70%) on one
 *    pool and on 2 and 4 cells, through the Dispatcher and the CellDispatcher.
 *
 *   node dist/scaling.js [--reps <n>] [--rate <jobs per second>] [--cell-rate <jobs per second>]
 *     [--only primaries,cells,routing] [--json <file>]
 *
 * `--cell-rate` runs the cells part at that rate per cell (N cells: N times it in all) instead of
 * `--rate` in all: what each cell costs when cells come at the same rate each, as with primaries.
 *
 * Configurations alternate within each repetition; /proc/loadavg is read around every run.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { startRedisServer } from '@hedgeyard/redis-server'
import { Redis } from 'ioredis'
import { checkArgs, numberOption, type OptionSpec, runMain } from './cli.js'
import { summarize } from './latency.js'
import { type BenchContext, measureWith, type RunMeasurement } from './measure-run.js'
import { commandStats, redisCpuSeconds } from './redis-info.js'
import { RunnerProcess } from './runner-process.js'
import type { HedgeyardWorkerConfig } from './runners/hedgeyard-worker.js'
import type { WorkSpec } from './runners/job-work.js'
import { type BenchCluster, type BenchNode, startBenchCluster } from './scaling-cluster.js'
import { fmt, markdownTable, spread } from './stats.js'
import { ROUTING_DEFAULTS, routingWorkload } from './suite-routing.js'

const USAGE =
  'usage: node packages/bench/dist/scaling.js [--reps <n>] [--rate <jobs per second>] [--cell-rate <jobs per second>]\n  [--only primaries,cells,routing] [--json <file>]'
const OPTIONS = {
  reps: { type: 'string' },
  rate: { type: 'string' },
  'cell-rate': { type: 'string' },
  only: { type: 'string' },
  json: { type: 'string' },
} as const satisfies OptionSpec

const PRIMARIES = [1, 2, 3] as const
const CELLS = [1, 2, 4, 8] as const
const ROUTING_CELLS = [undefined, 2, 4] as const

/** The cells' pool names, `chat.0` ... `chat.N-1`: the whole contract of a cell (docs/cells.md). */
const cellPools = (pool: string, cells: number) => Array.from({ length: cells }, (_, i) => `${pool}.${i}`)
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')
const rotate = <T>(list: readonly T[], by: number): T[] => [
  ...list.slice(by % list.length),
  ...list.slice(0, by % list.length),
]

function contextOf(redisUrl: string, conn: Redis): BenchContext {
  return {
    redisUrl,
    conn,
    isQuick: false,
    quietWaitMs: 0,
    attempts: 1,
    retries: { used: 0, max: 0 },
    log: console.log,
  }
}

/**
 * A pool name and a cell count (the fewest of `primaries`, 2x, 3x... for which one exists) whose
 * cells spread evenly over the cluster's primaries: names `s0` ... `s199` are tried, each cell's
 * slot looked up (`CLUSTER KEYSLOT`, `CLUSTER NODES`). Cells 0 and 1 of a name always hash
 * 0x1021 apart (CRC16 is linear), so on 2 primaries split at slot 8192 they never part.
 */
async function evenPool(
  cluster: BenchCluster,
  minCells: number,
): Promise<{ pool: string; cells: number; owners: BenchNode[]; slots: number[] }> {
  const primaries = cluster.nodes.length
  for (let cells = Math.max(minCells, primaries); cells <= 8 * primaries; cells += primaries) {
    for (let k = 0; k < 200; k++) {
      const pool = `s${k}`
      const found = await Promise.all(cellPools(pool, cells).map((p) => cluster.ownerOf(p)))
      const owners = found.map((f) => f.node)
      if (cluster.nodes.every((n) => owners.filter((o) => o === n).length === cells / primaries))
        return { pool, cells, owners, slots: found.map((f) => f.slot) }
    }
  }
  throw new Error(`no pool name spreads its cells evenly over ${primaries} primaries`)
}

interface CpuRun {
  cells: number
  jobs: number
  /** Per node: `INFO cpu` delta (us), commandstats usec, jobs its cells ran. */
  nodes: { cpuUs: number; commandUs: number; jobs: number }[]
  /** `INFO commandstats` summed over the nodes: calls and usec of each command. */
  commands: Record<string, { calls: number; usec: number }>
  producerCpuUs: number
  workerCpuUs: number
  jobsPerSecond: number
  load: string
}

/** One run of 3 s of Poisson arrivals of no-op jobs at `ratePerSecond` on `minCells` cells (or more, see evenPool) of the cluster, one worker process for all. */
async function cpuRun(cluster: BenchCluster, minCells: number, ratePerSecond: number): Promise<CpuRun> {
  const { pool, cells, owners: cellOwners } = await evenPool(cluster, minCells)
  const pools = cellPools(pool, cells)
  await Promise.all(cluster.nodes.map((n) => n.conn.flushall()))
  const worker = await RunnerProcess.start<{ type: string; workerIds: string[] }>('hedgeyard-worker', {
    redis: cluster.url,
    pool: pools[0] as string,
    pools,
    idPrefix: 'w',
    count: 2,
    concurrency: 16,
    queueCapacity: 10_000,
    work: { kind: 'noop' },
  } satisfies HedgeyardWorkerConfig)
  const first = cluster.nodes[0] as BenchNode
  let before: { cpu: number }[] = []
  let after: { cpu: number; usec: number; stats: Record<string, { calls: number; usec: number }> }[] = []
  const load = loadavg()
  try {
    const m: RunMeasurement = await measureWith(
      contextOf(cluster.url, first.conn),
      'hedgeyard',
      worker.runner,
      {
        runner: 'hedgeyard-producer',
        config: {
          redis: cluster.url,
          pool,
          cells,
          timeoutMs: 120_000,
          workload: { kind: 'open', ratePerSecond, durationMs: 3_000, warmupMs: 500 },
        },
      },
      {
        async afterWarmup() {
          await Promise.all(cluster.nodes.map((n) => n.conn.config('RESETSTAT')))
        },
        whileMeasuring() {
          const taken = Promise.all(
            cluster.nodes.map(async (n) => ({ cpu: (await redisCpuSeconds(n.conn)).total })),
          )
          return async () => {
            before = await taken
            after = await Promise.all(
              cluster.nodes.map(async (n) => {
                const stats = await commandStats(n.conn)
                const usec = Object.values(stats).reduce((sum, c) => sum + c.usec, 0)
                return { cpu: (await redisCpuSeconds(n.conn)).total, usec, stats }
              }),
            )
          }
        },
      },
    )
    const nodeJobs = cluster.nodes.map((n) =>
      Object.entries(m.worker.perWorker)
        .filter(([id]) => cellOwners[Number(/^wc(\d+)-/.exec(id)?.[1])] === n)
        .reduce((s, [, v]) => s + v, 0),
    )
    return {
      cells,
      jobs: m.jobs,
      nodes: cluster.nodes.map((_, i) => ({
        cpuUs: ((after[i]?.cpu ?? 0) - (before[i]?.cpu ?? 0)) * 1e6,
        commandUs: after[i]?.usec ?? 0,
        jobs: nodeJobs[i] ?? 0,
      })),
      commands: after.reduce<CpuRun['commands']>((all, n) => {
        for (const [name, c] of Object.entries(n.stats)) {
          const sum = all[name] ?? { calls: 0, usec: 0 }
          all[name] = { calls: sum.calls + c.calls, usec: sum.usec + c.usec }
        }
        return all
      }, {}),
      producerCpuUs: m.producer.cpuUs,
      workerCpuUs: m.worker.cpuUs,
      jobsPerSecond: m.jobsPerSecond,
      load: `${load} -> ${loadavg()}`,
    }
  } finally {
    await worker.runner.stop()
  }
}

interface RoutingRun {
  meanUs: number
  p50Us: number
  p99Us: number
  slowShare: number
  load: string
}

/** Suite e's first workload through the Dispatcher (no cells) or a CellDispatcher over `cells` cells. */
async function routingRun(
  url: string,
  conn: Redis,
  cells: number | undefined,
  rep: number,
  ratePerSecond: number,
  work: WorkSpec,
): Promise<RoutingRun> {
  const o = ROUTING_DEFAULTS
  const pool = `route-${cells ?? 0}-${rep}`
  const pools = cells === undefined ? undefined : cellPools(pool, cells)
  const worker = await RunnerProcess.start<{ type: string; workerIds: string[] }>('hedgeyard-worker', {
    redis: url,
    pool,
    ...(pools === undefined ? {} : { pools }),
    idPrefix: 'sim',
    count: o.workers / (cells ?? 1),
    concurrency: o.concurrency,
    queueCapacity: 100_000,
    work,
  } satisfies HedgeyardWorkerConfig)
  const load = loadavg()
  try {
    const m = await measureWith(contextOf(url, conn), 'hedgeyard', worker.runner, {
      runner: 'routing-producer',
      config: {
        redis: url,
        pool,
        workerIds: worker.ready.workerIds,
        policy: 'dispatcher',
        ratePerSecond,
        jobs: o.jobs,
        warmupJobs: o.warmupJobs,
        seed: o.seed + rep,
        timeoutMs: 120_000,
        ...(cells === undefined ? {} : { cells }),
      },
    })
    const latency = summarize(m.latenciesUs ?? [])
    const slowId = pools === undefined ? 'sim-1' : 'simc0-1'
    return {
      meanUs: latency.meanUs,
      p50Us: latency.p50Us,
      p99Us: latency.p99Us,
      slowShare: (m.worker.perWorker[slowId] ?? 0) / m.jobs,
      load: `${load} -> ${loadavg()}`,
    }
  } finally {
    await worker.runner.stop()
  }
}

async function main(): Promise<number> {
  checkArgs('scaling.js', USAGE, OPTIONS)
  const { values } = parseArgs({ options: OPTIONS, strict: true })
  const reps = numberOption('reps', values.reps, 3)
  const rate = numberOption('rate', values.rate, 2_000)
  const cellRate =
    values['cell-rate'] === undefined ? undefined : numberOption('cell-rate', values['cell-rate'], 0)
  const parts = new Set((values.only ?? 'primaries,cells,routing').split(','))
  for (const part of parts) {
    if (!['primaries', 'cells', 'routing'].includes(part))
      throw new Error(`--only takes primaries, cells and routing, comma-separated (got '${part}')`)
  }
  const clusters = new Map<number, BenchCluster>()
  const plain = await startRedisServer()
  const plainUrl = `redis://127.0.0.1:${plain.port}`
  const plainConn = new Redis(plainUrl)
  const primaryRuns = new Map<number, CpuRun[]>()
  const cellRuns = new Map<number, CpuRun[]>()
  const routingRuns = new Map<string, RoutingRun[]>()
  const push = <K, V>(map: Map<K, V[]>, key: K, value: V) => map.set(key, [...(map.get(key) ?? []), value])
  try {
    for (const p of PRIMARIES) clusters.set(p, await startBenchCluster(p))
    const placement: Record<string, { pool: string; cells: { slot: number; node: string }[] }> = {}
    for (const p of PRIMARIES) {
      const cluster = clusters.get(p) as BenchCluster
      const { pool, owners, slots } = await evenPool(cluster, p)
      placement[`${p}`] = {
        pool: `${pool} (${slots.length} cells)`,
        cells: slots.map((slot, i) => ({
          slot,
          node: `node ${cluster.nodes.indexOf(owners[i] as BenchNode) + 1}`,
        })),
      }
    }
    console.log(`placement (pool name: cell slots and their primaries): ${JSON.stringify(placement)}`)

    const { work, fastMs, slowMs, ratePerSecond } = await routingWorkload(ROUTING_DEFAULTS)

    for (let rep = 1; rep <= reps; rep++) {
      for (const p of parts.has('primaries') ? rotate(PRIMARIES, rep - 1) : []) {
        const run = await cpuRun(clusters.get(p) as BenchCluster, p, rate)
        push(primaryRuns, p, run)
        console.log(`rep ${rep} primaries ${p}: ${JSON.stringify(run)}`)
      }
      for (const c of parts.has('cells') ? rotate(CELLS, rep - 1) : []) {
        const run = await cpuRun(
          clusters.get(1) as BenchCluster,
          c,
          cellRate === undefined ? rate : cellRate * c,
        )
        push(cellRuns, c, run)
        console.log(`rep ${rep} cells ${c}: ${JSON.stringify(run)}`)
      }
      for (const c of parts.has('routing') ? rotate(ROUTING_CELLS, rep - 1) : []) {
        await plainConn.flushall()
        const run = await routingRun(plainUrl, plainConn, c, rep, ratePerSecond, work)
        push(routingRuns, `${c ?? 'one pool'}`, run)
        console.log(`rep ${rep} routing ${c ?? 'one pool'}: ${JSON.stringify(run)}`)
      }
    }

    const us = (runs: CpuRun[], pick: (r: CpuRun) => number) => fmt(spread(runs.map(pick)), 1)
    if (parts.has('primaries'))
      console.log(
        `\n${markdownTable(
          [
            'primaries',
            'cells',
            'primary',
            'Redis CPU us per job of the whole run',
            'commandstats us per job',
            'Redis CPU us per job it ran',
            'share of Redis CPU',
            'share of jobs',
          ],
          PRIMARIES.flatMap((p) => {
            const runs = primaryRuns.get(p) ?? []
            return Array.from({ length: p }, (_, i) => {
              const node = (r: CpuRun) => r.nodes[i] as CpuRun['nodes'][number]
              const total = (r: CpuRun) => r.nodes.reduce((s, n) => s + n.cpuUs, 0)
              return [
                String(p),
                String(i + 1),
                us(runs, (r) => node(r).cpuUs / r.jobs),
                us(runs, (r) => node(r).commandUs / r.jobs),
                us(runs, (r) => node(r).cpuUs / node(r).jobs),
                `${fmt(spread(runs.map((r) => node(r).cpuUs / total(r))), 1, 100)}%`,
                `${fmt(spread(runs.map((r) => node(r).jobs / r.jobs)), 1, 100)}%`,
              ]
            })
          }),
        )}`,
      )
    if (parts.has('cells'))
      console.log(
        `\n${markdownTable(
          [
            'cells',
            'Redis CPU us per job',
            'commandstats us per job',
            'producer CPU us per job',
            'worker CPU us per job',
            'jobs per second',
          ],
          CELLS.map((c) => {
            const runs = cellRuns.get(c) ?? []
            return [
              String(c),
              us(runs, (r) => (r.nodes[0]?.cpuUs ?? 0) / r.jobs),
              us(runs, (r) => (r.nodes[0]?.commandUs ?? 0) / r.jobs),
              us(runs, (r) => r.producerCpuUs / r.jobs),
              us(runs, (r) => r.workerCpuUs / r.jobs),
              fmt(spread(runs.map((r) => r.jobsPerSecond)), 0),
            ]
          }),
        )}`,
      )
    // Where the cost per job goes as cells grow: the commands that take most of it, per job.
    const top = Object.entries(cellRuns.get(1)?.[0]?.commands ?? {})
      .sort((a, b) => b[1].usec - a[1].usec)
      .slice(0, 6)
      .map(([name]) => name)
    const perJob = (runs: CpuRun[], name: string, pick: 'calls' | 'usec') =>
      fmt(spread(runs.map((r) => (r.commands[name]?.[pick] ?? 0) / r.jobs)), pick === 'calls' ? 2 : 1)
    if (parts.has('cells'))
      console.log(
        `\n${markdownTable(
          ['command', ...CELLS.map((c) => `${c} cells: calls, us per job`)],
          top.map((name) => [
            name,
            ...CELLS.map(
              (c) =>
                `${perJob(cellRuns.get(c) ?? [], name, 'calls')}, ${perJob(cellRuns.get(c) ?? [], name, 'usec')}`,
            ),
          ]),
        )}`,
      )
    if (parts.has('routing'))
      console.log(
        `\nrouting at ${ratePerSecond}/s (mean service ${fastMs.toFixed(1)} ms, slow ${slowMs.toFixed(1)} ms)\n${markdownTable(
          ['routing', 'mean ms', 'p50 ms', 'p99 ms', 'jobs on the slow worker'],
          [...routingRuns].map(([k, runs]) => [
            k,
            fmt(spread(runs.map((r) => r.meanUs)), 2, 1e-3),
            fmt(spread(runs.map((r) => r.p50Us)), 2, 1e-3),
            fmt(spread(runs.map((r) => r.p99Us)), 2, 1e-3),
            `${fmt(spread(runs.map((r) => r.slowShare)), 1, 100)}%`,
          ]),
        )}`,
      )
    if (values.json !== undefined) {
      const all = {
        placement,
        ratePerSecond,
        primaries: Object.fromEntries(primaryRuns),
        cells: Object.fromEntries(cellRuns),
        routing: Object.fromEntries(routingRuns),
      }
      writeFileSync(values.json, JSON.stringify(all, null, 2))
    }
    return 0
  } finally {
    plainConn.disconnect()
    await plain.stop()
    for (const c of clusters.values()) await c.stop()
  }
}

runMain(main)
