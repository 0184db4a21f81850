import type { Redis } from 'ioredis'

/** How fast this machine is right now: it switches between speeds, so every measurement says. */
export interface HealthProbe {
  /** Time of a fixed integer loop on this process (ms): higher means a slow phase. */
  cpuLoopMs: number
  /** Median PING round trip over a few sequential pings (us). */
  pingUs: number
}

const LOOP_ITERATIONS = 3_000_000
const PINGS = 25

function cpuLoop(): number {
  let x = 0x9e3779b9
  for (let i = 0; i < LOOP_ITERATIONS; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
  }
  return x
}

/** Times a short CPU loop and a few PINGs. */
export async function probeHealth(conn: Redis): Promise<HealthProbe> {
  const start = process.hrtime.bigint()
  // The result is used (xorshift never reaches 0 from a non-zero seed), so the loop stays.
  if (cpuLoop() === 0) throw new Error('the CPU probe loop is broken')
  const cpuLoopMs = Number(process.hrtime.bigint() - start) / 1e6
  const rtts: number[] = []
  for (let i = 0; i < PINGS; i++) {
    const t0 = process.hrtime.bigint()
    await conn.ping()
    rtts.push(Number(process.hrtime.bigint() - t0) / 1e3)
  }
  rtts.sort((a, b) => a - b)
  return { cpuLoopMs: round(cpuLoopMs, 2), pingUs: round(rtts[Math.floor(PINGS / 2)] ?? 0, 1) }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
