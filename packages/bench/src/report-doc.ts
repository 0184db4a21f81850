/**
 * docs/benchmarks.md, written by each full run from its own results: method, machine, tables,
 * charts, the targets and, for each missed one, what bounds it. Sections of the previous doc
 * that this run does not write (another benchmark's, say) are kept as they were, before the
 * conditions of the runs, which end the doc.
 */
import { renderDispatchCostSection } from './report-doc-dispatch.js'
import { renderStreamingSection } from './report-doc-streaming.js'
import { boundsOfMissedTargets, methodSection } from './report-doc-text.js'
import {
  affinityTable,
  commandsTable,
  latencyTable,
  limitRatioTable,
  redisLimitTable,
  redisTimeTable,
  routingTable,
  targetsTable,
  throughputTable,
} from './report-tables.js'
import type { BenchResults, CarriedOver } from './results.js'
import { fmt, markdownTable, type Spread } from './stats.js'
import { ranRow } from './suite-latency.js'
import { SYSTEM_LABEL } from './systems.js'

/** The H2 titles this generator writes; any other H2 section of the previous doc is kept. */
export const OWN_SECTIONS = [
  'Summary',
  'How to run',
  'Machine and versions',
  'Method',
  'a. Throughput',
  'The Redis limit',
  'b. Closed loop',
  'c. Open loop',
  'd. Dispatch cost against pool size',
  'e. Routing quality',
  'f. Streaming',
  'Missed targets: what bounds them',
  'Conditions of the runs',
] as const

/** H2 sections of `doc` whose title is not one of ours (nor the old name of the dispatch section). */
function foreignSections(doc: string): string[] {
  const parts = doc.split(/^(?=## )/m).slice(1)
  return parts.filter((part) => {
    const title = (part.split('\n')[0] ?? '').replace(/^## /, '').trim()
    return !(OWN_SECTIONS as readonly string[]).includes(title) && title !== 'Dispatch cost against pool size'
  })
}

function chart(file: string, alt: string): string {
  return `![${alt}](bench/${file})`
}

export function renderDoc(r: BenchResults, previous: string): string {
  const m = r.machine
  const out: string[] = []
  const date = r.startedAt.slice(0, 10)
  out.push(
    '# Benchmarks',
    '',
    'Hedgeyard measured side by side with BullMQ and with the limit of the Redis it runs on (for latency:',
    'also a minimal streams job done with plain Redis commands and no library, and floors that do less than',
    'a dispatcher does: a bare round trip through Redis, no dispatch at all, and the bare writes of a',
    'placement), in one run of one command.',
    'Everything below, tables and charts, was written by that run',
    `(\`${r.command}\`, ${date}, ${Math.round(r.durationSeconds / 60)} minutes) from its own measurements; the raw figures`,
    'of every run are in [bench/results.json](bench/results.json). The machine is a noisy 2-core VM:',
    'every figure is the median of repeated runs with its range (min-max), and every run is preceded by a',
    'health probe whose results are listed at the end.',
    '',
  )
  if (r.carriedOver && r.carriedOver.length > 0) {
    const earlier = r.carriedOver.map(
      (c: CarriedOver) =>
        `${c.suites.join(', ')} from \`${c.command}\` of ${c.startedAt.slice(0, 10)} at \`${c.machine.commit}\`, on ` +
        `\`${c.machine.cpuModel}\` (${c.machine.cpuDetails}), kernel ${c.machine.kernel}, Node ${c.machine.node}, Redis ${c.machine.redis}`,
    )
    out.push(
      `This run measured ${r.suites.join(', ')} only. The results of the other suites are those of an earlier`,
      `run, kept as they were (results.json lists them under \`carriedOver\`): ${earlier.join('; ')}.`,
      "*Machine and versions* below is this run's; compare figures across suites with that in mind.",
      '',
    )
  }
  if (r.errors.length > 0) {
    out.push(
      `**Suites that failed in this run:** ${r.errors.map((e) => `${e.suite} (${e.message.split('\n')[0]})`).join('; ')}.`,
      '',
    )
  }

  out.push('## Summary', '')
  out.push(
    `${r.repetitions} runs of every measurement; ratios compare Hedgeyard with BullMQ in the same run: the ratio`,
    'of the medians, then the range of the ratios of each repetition (where the two ran next to each other).',
    '',
    targetsTable(r.targets),
    '',
  )
  const missed = r.targets.filter((t) => !t.isMet)
  out.push(
    missed.length === 0
      ? 'Every target is met in this run.'
      : `${missed.length} of ${r.targets.length} targets are missed in this run; ` +
          '[Missed targets](#missed-targets-what-bounds-them) says by how much and what bounds each one.',
    '',
  )
  const beyond = missed.filter((t) => t.plain && !t.plain.isMet)
  if (beyond.length > 0) {
    out.push(
      `${beyond.length === 1 ? 'One of them is' : `${beyond.length} of them are`} missed by the plain-commands baseline too: the same`,
      'processes, load generator and handler doing each job as a minimal streams job with no library',
      `(\`XADD\`, \`XREADGROUP\`, \`PUBLISH\` + \`XACK\` + \`XDEL\`; suites b and c). In this run ${beyond.length === 1 ? 'that bar lies' : 'those bars lie'} below`,
      `what this machine gave such a job: ${beyond.map((t) => t.label).join('; ')}.`,
      '',
    )
  }
  // Only a latency floor bounds what a dispatcher can reach: its work adds to the floor's time.
  const belowFloor = missed.filter((t) => t.floor?.kind === 'latency' && !t.floor.isMet)
  if (belowFloor.length > 0) {
    out.push(
      `${belowFloor.length === 1 ? 'One of them is' : `${belowFloor.length} of them are`} missed in every run even by a floor measured beside it, a request that does less`,
      `than a dispatcher through Redis does (see [Method](#method)): ${belowFloor.map((t) => `${t.label}: ${t.floor?.name}, ${t.floor?.measured}`).join('; ')}.`,
      `In these conditions ${belowFloor.length === 1 ? 'that bar lies' : 'those bars lie'} below what this machine gives such a request.`,
      '',
    )
  }
  if (r.throughput && r.redisLimit) {
    out.push(
      'Hedgeyard against the Redis limit (bulk throughput at concurrency 50 as a share of what this Redis',
      'does with redis-benchmark; see [The Redis limit](#the-redis-limit)):',
      '',
      limitRatioTable(r),
      '',
    )
  }

  out.push(
    '## How to run',
    '',
    '```sh',
    'pnpm run build      # race, hedgeyard, cli, bench',
    'npm run bench       # bootstrap (redis-server), then node packages/bench/dist/main.js',
    '```',
    '',
    '`npm run bench` starts its own `redis-server` on a free loopback port, without persistence, runs every',
    'suite, prints the tables, and rewrites this page, [bench/results.json](bench/results.json) and the',
    `charts in [bench/](bench/). It took ${Math.round(r.durationSeconds)} s here. Options of`,
    '`node packages/bench/dist/main.js`:',
    '',
    '- `--quick`: the smoke test that `npm test` runs: every suite with tiny sizes, one repetition, in',
    '  well under a minute; it fails on errors only, never on a timing, and writes nothing.',
    '- `--suites throughput,closed-loop,open-loop,routing,redis-limit,dispatch-cost,streaming`: a subset.',
    "  Writing into `docs/`, a subset keeps the other suites' results of the previous run there.",
    '- `--reps <n>`: repetitions (default 3). `--no-write`: print only.',
    '- `--profile <dir>`: a V8 CPU profile (`--cpu-prof`) of every producer and worker process, to see',
    '  where Node CPU goes; nothing is written to the docs, since profiling slows the processes down.',
    "- `--docs-dir <dir>`: write the page, the JSON and the charts there instead of the repository's `docs/`.",
    '- `--help`: the options, in short (`npm run bench -- --help`).',
    '',
    'Suite d can also run alone: `node packages/bench/dist/dispatch-cost.js` (see its section).',
    '',
  )

  out.push(
    '## Machine and versions',
    '',
    markdownTable(
      ['', ''],
      [
        ['CPUs', `${m.cpus} (\`nproc\`)`],
        ['CPU model', `\`${m.cpuModel}\` (${m.cpuDetails})`],
        ['memory', `${m.memoryGiB} GiB`],
        ['kernel', m.kernel],
        ['Node', m.node],
        ['Redis', `${m.redis} (\`redis-server\` from the distribution; redis-benchmark ${m.redisBenchmark})`],
        ['BullMQ', `${m.bullmq} (pinned in packages/bench/package.json)`],
        ['ioredis', `${m.ioredis} (used by Hedgeyard, BullMQ and the plain-commands baseline)`],
        ['Hedgeyard', `${m.hedgeyard} at \`${m.commit}\``],
        ['dispatch script', `SHA1 \`${r.dispatchScriptSha1.slice(0, 12)}\``],
        ['command', `\`${r.command}\` (${r.startedAt})`],
      ],
    ),
    '',
  )

  out.push(...methodSection(r), '')

  if (r.throughput) {
    const t = r.throughput
    out.push(
      '## a. Throughput',
      '',
      `${t.settings.jobs.toLocaleString('en')} no-op jobs submitted at once, after a warm-up of ${t.settings.warmupJobs.toLocaleString('en')};`,
      'total concurrency 50, then 1: one worker process whose single worker has that concurrency. Jobs/s',
      'count from the first submit to the last job done; for Hedgeyard that is the producer holding every',
      "result, for BullMQ the worker's last `completed` event (its producer does not wait for results, which",
      'favours BullMQ). CPU per job is the CPU time of Redis (`INFO cpu`) and of each Node process',
      '(`process.cpuUsage()`) over the run, divided by the jobs. The same asymmetry holds there: the',
      "Hedgeyard producer's CPU includes receiving every result (a `submit` resolves with it); the BullMQ",
      "producer's does not. At concurrency 1 every result arrives alone, so that is most of the",
      "Hedgeyard producer's CPU there.",
      '',
      throughputTable(t),
      '',
      chart('throughput.svg', 'jobs per second, Hedgeyard and BullMQ, concurrency 50 and 1'),
      '',
      chart('cpu-per-job.svg', 'CPU microseconds per job by process'),
      '',
      '**Commands per job.** What each process sent (counted in the process, on every ioredis',
      'connection), and what Redis ran (`INFO commandstats`: the commands scripts run count too).',
      '',
      commandsTable(t),
      '',
    )
    for (const c of t.settings.concurrencies) {
      out.push(
        `**Where Redis spends its time, concurrency ${c}** (\`INFO commandstats\` usec per job, median of the runs;`,
        '`evalsha` includes the commands its scripts run, listed again below it).',
        '',
        redisTimeTable(t, c),
        '',
      )
    }
  }

  if (r.redisLimit) {
    const l = r.redisLimit
    out.push(
      '## The Redis limit',
      '',
      `\`redis-benchmark -c ${l.settings.clients} -n <n> -P <1 or 16> -r 1000000 --csv <command>\` against the same`,
      'redis-server, between the suites. The dispatch script is the one the library embeds (SHA1',
      `\`${l.dispatchScriptSha1.slice(0, 12)}\`), called with the arguments the library's DispatchBatcher sends (its own encoder) on`,
      'a pool of 8 registered workers, one job per call and then 64. The plain commands are the least any',
      'stream-based design needs per job: XADD to queue it (the same fields as a Hedgeyard entry),',
      'XREADGROUP to read it (each entry the XADD run queued, once), XACK (of ids redis-benchmark cannot',
      'know: a lower bound of its cost), SET of the result with NX PX, and PUBLISH to a channel one client',
      'listens on. Their limit in jobs/s is 1 / (sum of 1 / rate of each). Redis CPU per job comes from',
      '`INFO cpu` around each run. redis-benchmark shares the 2 CPUs with Redis, as the Node processes do in',
      'the suites.',
      '',
      redisLimitTable(l),
      '',
    )
  }

  if (r.closedLoop) {
    const c = r.closedLoop
    out.push(
      '## b. Closed loop',
      '',
      `${Number(c.settings.jobs).toLocaleString('en')} sequential submit-and-await of a no-op job after ${c.settings.warmupJobs} warm-up ones, one`,
      `worker process with concurrency ${c.settings.concurrency}. Hedgeyard: \`await dispatcher.submit(req)\`. BullMQ: \`await queue.add(...)\`,`,
      "then the `completed` event of its job from the producer's `QueueEvents` (see [Method](#method)).",
      'Plain commands: `XADD`, then the result message (the baseline of [Method](#method)). Bare round',
      "trip: `PUBLISH` of the job's number, then the result message (the floor of [Method](#method)).",
      '',
      latencyTable(c),
      '',
      chart('closed-loop-cdf.svg', 'closed-loop latency CDF'),
      '',
    )
  }

  if (r.openLoop) {
    const o = r.openLoop
    const local = ranRow(o, 'local')
    out.push(
      '## c. Open loop',
      '',
      `${o.settings.ratePerSecond} requests/s for ${Number(o.settings.durationMs) / 1_000} s (after ${Number(o.settings.warmupMs) / 1_000} s of warm-up), each`,
      `request sent at its scheduled time whatever the others do, a handler that sleeps ${o.settings.handlerMs} ms`,
      `(\`setTimeout\`), concurrency ${o.settings.concurrency}. Latency counts from each request's *scheduled* send time, so`,
      'a late send (the load generator is a Node timer) is charged too; the send lag column says how late',
      "the generator was. The handler's own sleep took, at p99 (timers fire late on this VM):",
      `${o.rows
        .filter((x) => x.handlerP99Ms)
        .map((x) => `${fmt(x.handlerP99Ms as Spread, 2)} ms for ${SYSTEM_LABEL[x.system]}`)
        .join(', ')}. Each job returns the`,
      "time its handler took, so the *minus handler* column is each request's latency minus its own handler",
      'time: what the system (and the load generator) added around the handler. CPU per job is that of',
      'Redis, the producer and the worker process together, as in suite a: at 1,000 requests/s few jobs',
      'share a round trip, so every job pays its own wake-ups.',
      ...(local
        ? [
            '*No dispatch (one process)* is the floor: the same load generator calling the handler itself,',
            'with no Redis and no second process (see [Method](#method)); its CPU is that one process.',
          ]
        : []),
      '',
      latencyTable(o),
      '',
      chart('open-loop-cdf.svg', 'open-loop latency CDF'),
      '',
    )
  }

  if (r.dispatchCost) out.push(...renderDispatchCostSection(r.dispatchCost, r.machine), '')

  if (r.routing) {
    const g = r.routing
    const s = g.settings
    out.push(
      '## e. Routing quality',
      '',
      `${s.workers} workers in one consumer process, concurrency ${s.concurrency} each, whose jobs sleep for a seeded service time`,
      `(2 ms + an exponential draw of mean 8 ms; mean ${s.serviceMs.fast.toFixed(1)} ms with the timers' measured lateness),`,
      `one of them ${(s.serviceMs.slow / s.serviceMs.fast).toFixed(0)}x slower (mean ${s.serviceMs.slow.toFixed(1)} ms). Poisson arrivals at ${s.ratePerSecond}/s = ${s.utilisation * 100}% of the`,
      `pool's capacity, ${s.jobs.toLocaleString('en')} jobs per run after ${s.warmupJobs} warm-up ones, from a producer process; latency from`,
      'each arrival to its result.',
      '',
      "- *least-loaded (dispatch script)*: the library's dispatch script, called as its DispatchBatcher",
      '  calls it (one call per event-loop turn), results from the pub/sub channel the complete script',
      '  publishes on.',
      '- *round-robin* and *random*: the same script, the same calls and the same result path; the',
      "  benchmark chooses the worker and forces it by passing every other worker in the job's",
      '  `excluded` field. Only the choice differs.',
      '- *least-loaded (Dispatcher)*: the public `Dispatcher`, as a check that the script path is the',
      "  product's.",
      '',
      `The slow worker has ${(s.slowCapacityShare * 100).toFixed(1)}% of the capacity. Round-robin and random give it 1/${s.workers} of`,
      `the jobs (${(100 / s.workers).toFixed(1)}%), more than it can serve (${((s.utilisation * 100) / s.workers / (s.slowCapacityShare * 100)).toFixed(1)}x its capacity at this load): its queue grows for`,
      'as long as the run lasts, so their tail grows with the length of the run rather than settling.',
      'Least-loaded sends it about its share of the capacity. *Utilisation reached* is the busy time of',
      'all slots over the whole run, the drain of the last jobs included (so below 70%, and far below',
      'for the policies whose backlog drains for seconds after the last arrival).',
      '',
      routingTable(g),
      '',
      chart('routing-cdf.svg', 'routing latency CDF by policy'),
      '',
      `**Affinity.** ${s.workers} equal workers (no slow one) at the same utilisation (${s.affinityRatePerSecond}/s), through the Dispatcher.`,
      `With sessions, every request carries one: ${s.sessions.hot} hot sessions take ${s.sessions.hotShare * 100}% of the requests, ${s.sessions.cold}`,
      'others share the rest. No worker dies during the run, so the best possible hit rate is every request',
      "but each session's first (counted from the warm-up on). The hit rate is `Dispatcher.stats()`",
      "(`affinityHits / (affinityHits + affinityMisses)`). Load spread is the busiest worker's jobs over the",
      'mean, against the same load without sessions.',
      '',
      affinityTable(g),
      '',
    )
  }

  if (r.streaming) out.push(...renderStreamingSection(r.streaming), '')

  out.push(...boundsOfMissedTargets(r), '')
  const kept = foreignSections(previous)
  if (kept.length > 0) out.push(...kept.map((k) => k.trimEnd()), '')
  out.push(...conditionsSection(r), '')
  return `${out
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trimEnd()}\n`
}

/** The probe and the machine load of each run, summed up per suite. */
function conditionsSection(r: BenchResults): string[] {
  type Run = { probe: { cpuLoopMs: number; pingUs: number }; otherCpuLoad: number; stolenCpus?: number }
  const suites: [string, Run[]][] = []
  if (r.throughput) suites.push(['a. throughput', r.throughput.rows.flatMap((x) => x.runs)])
  if (r.closedLoop) suites.push(['b. closed loop', r.closedLoop.rows.flatMap((x) => x.runs)])
  if (r.openLoop) suites.push(['c. open loop', r.openLoop.rows.flatMap((x) => x.runs)])
  if (r.dispatchCost) {
    suites.push(['d. dispatch cost', r.dispatchCost.measurements.filter((m) => m.size === 8)])
  }
  if (r.routing) {
    suites.push([
      'e. routing',
      [...r.routing.rows.flatMap((x) => x.runs), ...r.routing.affinity.flatMap((x) => x.runs)],
    ])
  }
  if (r.streaming) suites.push(['f. streaming', r.streaming.rows.flatMap((x) => x.runs)])
  const range = (values: number[], digits: number) => {
    const known = values.filter(Number.isFinite)
    return known.length === 0
      ? '-'
      : `${Math.min(...known).toFixed(digits)}-${Math.max(...known).toFixed(digits)}`
  }
  return [
    '## Conditions of the runs',
    '',
    'Before each measurement the benchmark waits (up to 5 s) for the rest of the machine to be quiet,',
    'then times a fixed 3M-step integer loop in its own process (about 5 ms on a fast phase of this',
    'machine, up to twice that on a slow one) and the median of 25 PINGs. During the run it measures the',
    "CPU other processes took: the machine's busy time (`/proc/stat`) minus that of Redis and of the",
    "benchmark's own processes; and the CPU the hypervisor took from this VM (`steal` in `/proc/stat`):",
    'time in which a virtual CPU had work but the host ran something else, so whatever was on that CPU',
    "waited. Every run's figures are in results.json.",
    '',
    markdownTable(
      [
        'suite',
        'runs',
        'CPU loop ms',
        'PING us',
        'other processes, CPUs',
        'runs with others > 0.25 CPU',
        'stolen by the hypervisor, CPUs',
      ],
      suites.map(([name, runs]) => [
        name,
        String(runs.length),
        range(
          runs.map((x) => x.probe.cpuLoopMs),
          1,
        ),
        range(
          runs.map((x) => x.probe.pingUs),
          0,
        ),
        range(
          runs.map((x) => x.otherCpuLoad),
          2,
        ),
        String(runs.filter((x) => x.otherCpuLoad > 0.25).length),
        range(
          runs.map((x) => x.stolenCpus ?? Number.NaN),
          2,
        ),
      ]),
    ),
  ]
}
