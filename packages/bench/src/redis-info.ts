import type { Redis } from 'ioredis'

function infoFields(info: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const line of info.split('\r\n')) {
    const colon = line.indexOf(':')
    if (colon > 0) out.set(line.slice(0, colon), line.slice(colon + 1))
  }
  return out
}

/** CPU seconds the Redis process has used (`INFO cpu`: user + sys), in all and on its main thread. */
export async function redisCpuSeconds(conn: Redis): Promise<{ total: number; mainThread: number }> {
  const info = infoFields(await conn.info('cpu'))
  const n = (name: string) => Number(info.get(name) ?? Number.NaN)
  return {
    total: n('used_cpu_user') + n('used_cpu_sys'),
    mainThread: n('used_cpu_user_main_thread') + n('used_cpu_sys_main_thread'),
  }
}

/** usec spent in each command since the last `CONFIG RESETSTAT` (`INFO commandstats`). */
export async function commandUsec(conn: Redis): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const [key, value] of infoFields(await conn.info('commandstats'))) {
    const usec = /(?:^|,)usec=(\d+)/.exec(value)?.[1]
    if (key.startsWith('cmdstat_') && usec !== undefined) out.set(key.slice('cmdstat_'.length), Number(usec))
  }
  return out
}

/** Calls and usec of each command since the last `CONFIG RESETSTAT` (`INFO commandstats`). */
export async function commandStats(conn: Redis): Promise<Record<string, { calls: number; usec: number }>> {
  const out: Record<string, { calls: number; usec: number }> = {}
  for (const [key, value] of infoFields(await conn.info('commandstats'))) {
    const calls = /(?:^|,)calls=(\d+)/.exec(value)?.[1]
    const usec = /(?:^|,)usec=(\d+)/.exec(value)?.[1]
    if (key.startsWith('cmdstat_') && calls !== undefined) {
      out[key.slice('cmdstat_'.length)] = { calls: Number(calls), usec: Number(usec ?? 0) }
    }
  }
  return out
}
