import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

/** The fields of /proc/stat's `cpu` line (Linux), summed at `indexes`, in seconds; NaN elsewhere. */
function procStatSeconds(indexes: readonly number[]): number {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/)
    return indexes.reduce((sum, i) => sum + Number(fields[i]), 0) / 100
  } catch {
    return Number.NaN
  }
}

/** Busy CPU seconds of the whole machine since boot (/proc/stat, Linux), or NaN elsewhere. */
export function machineBusySeconds(): number {
  // cpu user nice system idle iowait irq softirq steal ...: busy = user + nice + system + irq + softirq.
  return procStatSeconds([1, 2, 3, 6, 7])
}

/**
 * CPU seconds the hypervisor gave to other guests while this VM wanted to run (`steal` in
 * /proc/stat), since boot; NaN where there is no such figure. Every process of the machine
 * stands still for that long, whatever it is.
 */
export function machineStolenSeconds(): number {
  return procStatSeconds([8])
}

const SAMPLE_MS = 500

/**
 * Waits until the rest of the machine is quiet: a half-second sample in which it keeps less than
 * `maxLoad` CPUs busy (this process and its Redis are idle while it samples). Gives up after
 * `maxWaitMs` and returns the last load seen, so the caller can say it measured anyway. With
 * `maxWaitMs` 0 it neither waits nor samples, and returns NaN.
 */
export async function waitForQuiet(maxLoad: number, maxWaitMs: number): Promise<number> {
  if (maxWaitMs <= 0) return Number.NaN
  const deadline = Date.now() + maxWaitMs
  for (;;) {
    const before = machineBusySeconds()
    await sleep(SAMPLE_MS)
    const load = (machineBusySeconds() - before) / (SAMPLE_MS / 1000)
    if (!(load >= maxLoad) || Date.now() >= deadline) return load
  }
}
