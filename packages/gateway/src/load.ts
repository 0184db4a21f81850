/**
 * The gateway's load check: what the gateway adds over calling `Dispatcher.submit` directly, and
 * whether it holds 1,000 open streams. It starts its own redis-server, two worker processes with a
 * 5 ms handler, one gateway process and the floor (load-floor.ts: one bare HTTP hop into
 * `Dispatcher.submit`), then, open-loop at a fixed rate, rotates 5-second slices of requests
 * through the gateway (`:generateContent`), through the floor, and submits from this process, and
 * reports p50/p99 of each, the 5xx seen, and the gateway's memory after its first slice and its last.
 * Then it opens 1,000 server-sent event streams at once on the gateway and reports its memory and
 * event-loop delay while they are open.
 *
 *   node packages/gateway/dist/load.js [--rate 500] [--seconds 30] [--streams 1000] [--quick]
 *     [--cpu-prof <dir>]
 *
 * `--help` says what each option does. `--cpu-prof <dir>` writes a CPU profile of the gateway
 * process into `dir` when it exits (open it in Chrome's DevTools).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Dispatcher } from 'hedgeyard'

const USAGE = `usage: node packages/gateway/dist/load.js [--rate 500] [--seconds 30] [--streams 1000] [--quick]
    [--cpu-prof <dir>]
  --rate N          requests a second, open loop (default 500; 100 with --quick)
  --seconds N       seconds of requests for each of the gateway, the floor and direct submits
                    (default 30; 4 with --quick), in slices that rotate
  --streams N       server-sent event streams held open at once on the gateway (default 1000; 50 with --quick)
  --quick           a short smoke run
  --cpu-prof <dir>  write a CPU profile of the gateway process into <dir> when it exits`

/** The command line, checked before anything starts: --help prints the usage; a bad option exits 2. */
function readArgs(): {
  rate?: string
  seconds?: string
  streams?: string
  quick?: boolean
  'cpu-prof'?: string
} {
  const argv = process.argv.slice(2)
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`)
    process.exit(0)
  }
  try {
    const { values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        rate: { type: 'string' },
        seconds: { type: 'string' },
        streams: { type: 'string' },
        quick: { type: 'boolean' },
        'cpu-prof': { type: 'string' },
      },
    })
    for (const name of ['rate', 'seconds', 'streams'] as const) {
      const v = values[name]
      if (v !== undefined && !/^[1-9]\d{0,6}$/.test(v))
        throw new Error(`--${name} must be a whole number from 1 (got ${v})`)
    }
    return values
  } catch (err) {
    process.stderr.write(`load.js: ${(err as Error).message}\n${USAGE}\n`)
    process.exit(2)
  }
}

const args = readArgs()
const isQuick = args.quick === true
const RATE = Number(args.rate ?? (isQuick ? 100 : 500))
const SECONDS = Number(args.seconds ?? (isQuick ? 4 : 30))
const STREAMS = Number(args.streams ?? (isQuick ? 50 : 1000))
const SLICE_S = isQuick ? 1 : 5
const CLI = join(dirname(fileURLToPath(import.meta.url)), '../../cli/dist/main.js')
const PROFILE_DIR = args['cpu-prof']

const children: ChildProcess[] = []
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL')
})

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

function start(
  cmd: string,
  argv: string[],
  env: Record<string, string> = {},
): { child: ChildProcess; out: () => string } {
  const child = spawn(cmd, argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  child.stdout?.on('data', (d) => {
    out += d
  })
  child.stderr?.on('data', (d) => {
    out += d
  })
  return { child, out: () => out }
}

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number
}

/** Sends `count` calls of `call` at `rate` per second, open loop; returns each one's latency (ms) and failures. */
async function openLoop(rate: number, seconds: number, call: () => Promise<number>) {
  const latencies: number[] = []
  const failures = new Map<string, number>()
  const total = Math.round(rate * seconds)
  const started = performance.now()
  const pending: Promise<void>[] = []
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1_000) / rate
    const wait = due - performance.now()
    if (wait > 1) await new Promise((r) => setTimeout(r, wait))
    const t0 = performance.now()
    pending.push(
      call().then(
        (status) => {
          if (status >= 500) failures.set(String(status), (failures.get(String(status)) ?? 0) + 1)
          else latencies.push(performance.now() - t0)
        },
        (err: unknown) => {
          const code = (err as { code?: string }).code ?? 'error'
          failures.set(code, (failures.get(code) ?? 0) + 1)
        },
      ),
    )
  }
  await Promise.all(pending)
  return { latencies, failures }
}

const BODY = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] })

function post(
  agent: Agent,
  port: number,
  path: string,
): Promise<{ status: number; res: import('node:http').IncomingMessage }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(BODY) },
      },
      (res) => resolve({ status: res.statusCode ?? 0, res }),
    )
    req.on('error', reject)
    req.end(BODY)
  })
}

/**
 * One scrape of the gateway's /metrics: a reader of its values by name. (The event-loop delay is
 * measured between scrapes, so every value of one moment comes from one scrape.)
 */
async function scrape(port: number): Promise<(name: string) => number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  return (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `))
    return line === undefined ? Number.NaN : Number(line.split(' ')[1])
  }
}

/**
 * The CPU seconds a process has used (user and system), from /proc: read the same way for the
 * gateway and the floor, around their own slices only. NaN where there is no /proc.
 */
function cpuSecondsOf(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return Number.NaN
  }
}

const mb = (bytes: number) => `${(bytes / 1_048_576).toFixed(1)} MB`
const ms = (v: number) => `${v.toFixed(2)} ms`

async function main(): Promise<void> {
  const redisPort = await freePort()
  start('redis-server', ['--port', String(redisPort), '--save', '', '--appendonly', 'no'])
  const redis = `redis://127.0.0.1:${redisPort}`
  await new Promise((r) => setTimeout(r, 300))
  const handler = join(tmpdir(), `hedgeyard-load-handler-${process.pid}.mjs`)
  writeFileSync(
    handler,
    `const reply = { candidates: [{ content: { role: 'model', parts: [{ text: 'ok' }] }, finishReason: 'STOP' }] }
export default function (req, ctx) {
  if (req.contents?.[0]?.parts?.[0]?.text === 'hold') {
    // A stream held open: one chunk, then nothing until the caller leaves or 60 s pass.
    return (async function* () {
      yield reply
      await new Promise((r) => { const t = setTimeout(r, 60000); ctx.signal.addEventListener('abort', () => { clearTimeout(t); r() }) })
      return reply
    })()
  }
  return new Promise((r) => setTimeout(() => r(reply), 5))
}
`,
  )
  const pool = 'load'
  for (let i = 0; i < 2; i++) {
    const w = start(process.execPath, [
      CLI,
      'worker',
      '--redis',
      redis,
      '--pool',
      pool,
      '--handler',
      handler,
      '--count',
      '2',
      '--concurrency',
      String(Math.max(200, STREAMS)),
    ])
    await until(() => w.out().includes('workers started'), 'a worker start')
  }
  const profile = PROFILE_DIR === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR]
  const gw = start(process.execPath, [
    ...profile,
    CLI,
    'gateway',
    '--redis',
    redis,
    '--pool',
    pool,
    '--port',
    '0',
  ])
  const url = await until(() => /"url":"(http:[^"]+)"/.exec(gw.out())?.[1], 'the gateway start')
  const port = Number(new URL(url).port)
  const floor = start(process.execPath, [
    join(dirname(fileURLToPath(import.meta.url)), 'load-floor.js'),
    redis,
    pool,
  ])
  const floorUrl = await until(() => /"url":"(http:[^"]+)"/.exec(floor.out())?.[1], 'the floor start')
  const floorPort = Number(new URL(floorUrl).port)
  const agent = new Agent({ keepAlive: true, maxSockets: 512 })
  const d = new Dispatcher({ redis, pool })

  const viaGateway = async () => {
    const { status, res } = await post(agent, port, '/v1beta/models/m:generateContent')
    res.resume()
    await new Promise((r) => res.on('end', r))
    return status
  }
  const viaFloor = async () => {
    const { status, res } = await post(agent, floorPort, '/')
    res.resume()
    await new Promise((r) => res.on('end', r))
    return status
  }
  const direct = async () => {
    await d.submit({ contents: [{ role: 'user', parts: [{ text: 'hello' }] }] })
    return 200
  }

  process.stdout.write(`warm-up: ${isQuick ? 2 : 5} s at ${RATE}/s through the gateway\n`)
  await openLoop(RATE, isQuick ? 2 : 5, viaGateway)
  await openLoop(RATE, isQuick ? 1 : 2, viaFloor)
  await openLoop(RATE, isQuick ? 1 : 2, direct)
  const warm = await scrape(port)

  const gwLat: number[] = []
  const fLat: number[] = []
  const dLat: number[] = []
  const gwP99: number[] = []
  const fP99: number[] = []
  const dP99: number[] = []
  // The gateway's RSS right after each of its slices: the first is its value after the warm-up,
  // the last its value at the end, both read at the same point of its load (read after the other
  // slices, they would differ by what the heap gives back while the gateway idles).
  const rssAfterSlices: number[] = []
  // CPU seconds of the gateway and of the floor over their own slices.
  const sliceCpu = { gateway: 0, floor: 0 }
  const fails = new Map<string, number>()
  for (let s = 0; s < SECONDS / SLICE_S; s++) {
    const kinds = [
      ['gateway', viaGateway, gwLat, gwP99],
      ['floor', viaFloor, fLat, fP99],
      ['direct', direct, dLat, dP99],
    ] as const
    // Each slice starts with another of the three, so that none always follows the same one.
    for (const [kind, call, all, p99s] of [...kinds.slice(s % 3), ...kinds.slice(0, s % 3)]) {
      const server = kind === 'gateway' ? gw.child.pid : kind === 'floor' ? floor.child.pid : undefined
      const cpuBefore = cpuSecondsOf(server)
      const r = await openLoop(RATE, SLICE_S, call)
      if (kind !== 'direct') sliceCpu[kind] += cpuSecondsOf(server) - cpuBefore
      all.push(...r.latencies)
      p99s.push(
        percentile(
          [...r.latencies].sort((a, b) => a - b),
          0.99,
        ),
      )
      for (const [k, v] of r.failures) fails.set(`${kind} ${k}`, (fails.get(`${kind} ${k}`) ?? 0) + v)
      if (kind === 'gateway') rssAfterSlices.push((await scrape(port))('process_resident_memory_bytes'))
    }
    process.stdout.write(
      `  slice ${s + 1}: p99 gateway ${ms(gwP99.at(-1) as number)}, floor ${ms(fP99.at(-1) as number)}, direct ${ms(dP99.at(-1) as number)}\n`,
    )
  }
  const end = await scrape(port)
  const rssWarm = rssAfterSlices[0] as number
  const rssEnd = rssAfterSlices.at(-1) as number
  // The gateway's CPU over all the slices (it idles through the floor's and the direct ones).
  const cpuUsPerRequest =
    ((end('process_cpu_seconds_total') - warm('process_cpu_seconds_total')) * 1e6) / gwLat.length
  gwLat.sort((a, b) => a - b)
  fLat.sort((a, b) => a - b)
  dLat.sort((a, b) => a - b)
  const median = (xs: number[]) =>
    percentile(
      [...xs].sort((a, b) => a - b),
      0.5,
    )
  const added = gwP99.map((v, i) => v - (dP99[i] as number))
  const floorAdded = fP99.map((v, i) => v - (dP99[i] as number))
  const overFloor = gwP99.map((v, i) => v - (fP99[i] as number))
  process.stdout.write(
    `${[
      `requests: ${gwLat.length} through the gateway, ${fLat.length} through the floor, ${dLat.length} direct, at ${RATE}/s, in ${SLICE_S} s slices rotating`,
      `5xx or errors: ${fails.size === 0 ? 'none' : [...fails].map(([k, v]) => `${k}: ${v}`).join(', ')}`,
      `gateway: p50 ${ms(percentile(gwLat, 0.5))}, p99 ${ms(percentile(gwLat, 0.99))}`,
      `floor (one bare HTTP hop): p50 ${ms(percentile(fLat, 0.5))}, p99 ${ms(percentile(fLat, 0.99))}`,
      `direct Dispatcher.submit: p50 ${ms(percentile(dLat, 0.5))}, p99 ${ms(percentile(dLat, 0.99))}`,
      `p99 the gateway adds: ${ms(percentile(gwLat, 0.99) - percentile(dLat, 0.99))} overall; median over slices ${ms(median(added))}`,
      `p99 the floor adds: ${ms(percentile(fLat, 0.99) - percentile(dLat, 0.99))} overall; median over slices ${ms(median(floorAdded))}`,
      `p99 the gateway adds over the floor: ${ms(percentile(gwLat, 0.99) - percentile(fLat, 0.99))} overall; median over slices ${ms(median(overFloor))}`,
      `CPU per request over its own slices: gateway ${((sliceCpu.gateway * 1e6) / gwLat.length).toFixed(0)} us, floor ${((sliceCpu.floor * 1e6) / fLat.length).toFixed(0)} us; the gateway over all the slices, idle ones included, ${cpuUsPerRequest.toFixed(0)} us`,
      `gateway RSS after each of its slices: ${mb(rssWarm)} after the first (the warm-up done), ${mb(rssEnd)} after the last (${(((rssEnd - rssWarm) / rssWarm) * 100).toFixed(1)}%); lowest ${mb(Math.min(...rssAfterSlices))}, highest ${mb(Math.max(...rssAfterSlices))}`,
    ].join('\n')}\n`,
  )

  // Streams held open on one instance.
  const streamAgent = new Agent({ keepAlive: false, maxSockets: STREAMS + 10 })
  const holdBody = JSON.stringify({ contents: [{ role: 'user', parts: [{ text: 'hold' }] }] })
  const open: import('node:http').ClientRequest[] = []
  let firstChunks = 0
  for (let i = 0; i < STREAMS; i++) {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/v1beta/models/m:streamGenerateContent?alt=sse',
        method: 'POST',
        agent: streamAgent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(holdBody) },
      },
      (res) => {
        res.once('data', () => {
          firstChunks++
        })
      },
    )
    req.on('error', () => {})
    req.end(holdBody)
    open.push(req)
  }
  await until(() => firstChunks >= STREAMS, `${STREAMS} streams' first chunks`, 60_000)
  // The event-loop delay of the 5 s that follow, with every stream open.
  await scrape(port)
  await new Promise((r) => setTimeout(r, 5_000))
  const held = await scrape(port)
  const openStreams = held('hedgeyard_gateway_open_streams')
  const rssStreams = held('process_resident_memory_bytes')
  const lagP99 = held('nodejs_eventloop_lag_p99_seconds')
  const lagMean = held('nodejs_eventloop_lag_mean_seconds')
  process.stdout.write(
    `${openStreams} streams open on one gateway: RSS ${mb(rssStreams)}, event-loop delay mean ${ms(lagMean * 1_000)}, p99 ${ms(lagP99 * 1_000)}\n`,
  )
  for (const req of open) req.destroy()
  await d.close()
  if (PROFILE_DIR !== undefined) {
    // A profile is written when the process exits on its own: stop the gateway, and wait for it.
    gw.child.kill('SIGTERM')
    await new Promise((r) => gw.child.once('exit', r))
  }
  process.exit(0)
}

main().catch((err: unknown) => {
  process.stderr.write(`load check failed: ${(err as Error).stack ?? String(err)}\n`)
  process.exit(1)
})
