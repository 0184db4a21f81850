/**
 * Bounded memory: runs 100,000 jobs with sessions through worker processes, lets the result and
 * affinity TTLs run out, and compares Redis `used_memory` with where it started.
 *
 *   node packages/bench/dist/memory.js [--jobs N] [--quick] [--json file]
 */
import type { ChildProcess } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { startRedisServer } from '@hedgeyard/redis-server'
import { DISPATCHER_DEFAULTS, Dispatcher, poolKeys } from 'hedgeyard'
import { Redis } from 'ioredis'
import { checkArgs, startCli } from './cli.js'

checkArgs('memory.js', 'usage: node packages/bench/dist/memory.js [--jobs <n>] [--quick] [--json <file>]', {
  jobs: { type: 'string' },
  quick: { type: 'boolean' },
  json: { type: 'string' },
})
const args = process.argv.slice(2)
const isQuick = args.includes('--quick')
const flag = (name: string) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : undefined
}
const JOBS = Number(flag('--jobs') ?? (isQuick ? 2_000 : 100_000))
const TTL_MS = isQuick ? 500 : 3_000
const WORKER_PROCESSES = 2
const HANDLER = fileURLToPath(new URL('./memory-handler.js', import.meta.url))

async function usedMemory(c: Redis): Promise<number> {
  await c.call('MEMORY', 'PURGE').catch(() => {})
  const info = await c.info('memory')
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0)
}

async function main(): Promise<void> {
  const server = await startRedisServer()
  const c = new Redis(server.url)
  const pool = 'memory'
  const keys = poolKeys(DISPATCHER_DEFAULTS.prefix, pool)
  const workers: ChildProcess[] = []
  try {
    const before = await usedMemory(c)
    for (let i = 0; i < WORKER_PROCESSES; i++) {
      const args = ['worker', '--redis', server.url, '--pool', pool, '--handler', HANDLER, '--count', '2']
      args.push('--concurrency', '16', '--queue-capacity', '5000', '--id-prefix', `mem${i}`)
      workers.push((await startCli(args, /workers started/, { HEDGEYARD_LOG_LEVEL: 'info' })).child)
    }
    const d = new Dispatcher({ redis: server.url, pool, resultTtlMs: TTL_MS, affinityTtlMs: TTL_MS })
    const startedAt = Date.now()
    let next = 0
    let peak = 0
    const lanes = Array.from({ length: 200 }, async () => {
      while (next < JOBS) {
        const n = next++
        await d.submit(
          { n, text: 'x'.repeat(200) },
          { session: `s${n % 5_000}`, onSaturated: 'wait', timeoutMs: 60_000 },
        )
        if (n % 10_000 === 0) peak = Math.max(peak, await usedMemory(c))
      }
    })
    await Promise.all(lanes)
    const runS = (Date.now() - startedAt) / 1000
    peak = Math.max(peak, await usedMemory(c))
    const afterRun = await usedMemory(c)
    await d.close()
    await Promise.all(
      workers.map(
        (w) =>
          new Promise((r) => {
            w.once('exit', r)
            w.kill('SIGTERM')
          }),
      ),
    )
    await new Promise((r) => setTimeout(r, TTL_MS + 500))
    // SCAN deletes the keys it finds expired, as the active expiry cycle would, in time.
    let cursor = '0'
    const left: string[] = []
    do {
      const [nextCursor, found] = await c.scan(cursor, 'MATCH', `${keys.base}*`, 'COUNT', 1000)
      cursor = nextCursor
      left.push(...found)
    } while (cursor !== '0')
    const after = await usedMemory(c)
    const result = {
      jobs: JOBS,
      runSeconds: runS,
      ttlMs: TTL_MS,
      usedMemoryBefore: before,
      usedMemoryPeak: peak,
      usedMemoryAfterRun: afterRun,
      usedMemoryAfterTtl: after,
      growthBytes: after - before,
      keysLeft: left,
      redis: server.version,
    }
    const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`
    process.stdout.write(
      `memory: ${JOBS} jobs with 5,000 sessions in ${runS.toFixed(1)} s; used_memory before ${kb(before)}, peak ${kb(peak)}, ` +
        `right after ${kb(afterRun)}, after the TTLs (${TTL_MS} ms) ${kb(after)}: ${after - before >= 0 ? '+' : ''}${kb(after - before)}; keys left: ${left.length ? left.join(', ') : 'none'}\n`,
    )
    const json = flag('--json')
    if (json) writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`)
    // Whatever is left must be on its way out: a key without a TTL would be a leak.
    const lasting = []
    for (const key of left) if ((await c.pttl(key)) < 0) lasting.push(key)
    if (lasting.length > 0) {
      process.stderr.write(`keys without a TTL left behind: ${lasting.join(', ')}\n`)
      process.exitCode = 1
    }
  } finally {
    for (const w of workers) w.kill('SIGKILL')
    c.disconnect()
    await server.stop()
  }
}

await main()
