import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Redis } from 'ioredis'
import { root } from './helpers.js'

/** The roles docs/security.md gives ACL rules for. */
export const ROLES = ['producer', 'worker', 'monitor', 'admin', 'gateway'] as const
export type Role = (typeof ROLES)[number]

/** The password the tests give every role's user (in place of the docs' CHANGE-ME). */
export const ROLE_PASSWORD = `pw-${Math.random().toString(36).slice(2, 12)}`

/**
 * The ACL SETUSER lines docs/security.md gives a role: the user's rules, its optional commands,
 * and what it adds on a Redis Cluster (the line that names `+cluster|slots`).
 */
export function documentedRules(role: Role): { rules: string[]; optional: string[]; cluster: string[] } {
  const doc = readFileSync(join(root, 'docs/security.md'), 'utf8')
  const lines = doc.split('\n').filter((l) => l.startsWith(`ACL SETUSER hy-${role} `))
  const words = (line: string) => line.split(/\s+/).slice(3)
  const isCluster = (l: string) => l.includes(' +cluster|slots')
  const rules = lines.filter((l) => l.includes(' reset '))
  const optional = lines.filter((l) => !l.includes(' reset ') && !isCluster(l))
  const cluster = lines.filter(isCluster)
  if (rules.length !== 1 || optional.length !== 1 || cluster.length !== 1) {
    throw new Error(
      `docs/security.md must give hy-${role} one line with reset, one without and one for a cluster (found ${lines.length})`,
    )
  }
  return {
    rules: words(rules[0] as string),
    optional: words(optional[0] as string),
    cluster: words(cluster[0] as string),
  }
}

/** The commands a role's lines allow (`+x`), lower case. */
export function allowedCommands(role: Role, withOptional = true): Set<string> {
  const { rules, optional } = documentedRules(role)
  const words = withOptional ? [...rules, ...optional] : rules
  return new Set(words.filter((w) => w.startsWith('+')).map((w) => w.slice(1).toLowerCase()))
}

/**
 * Creates the role's user for `pool` as docs/security.md says (named `hy-<role>` unless given a
 * name), with its optional commands unless told not to.
 */
export async function createRoleUser(
  admin: Redis,
  role: Role,
  pool: string,
  options: { withOptional?: boolean; user?: string; onCluster?: boolean } = {},
): Promise<void> {
  const { rules, optional, cluster } = documentedRules(role)
  const user = options.user ?? `hy-${role}`
  const forPool = (w: string) => w.replace('{chat}', `{${pool}}`).replace('>CHANGE-ME', `>${ROLE_PASSWORD}`)
  await admin.call('ACL', 'SETUSER', user, ...rules.map(forPool))
  if (options.withOptional ?? true) await admin.call('ACL', 'SETUSER', user, ...optional.map(forPool))
  if (options.onCluster) await admin.call('ACL', 'SETUSER', user, ...cluster.map(forPool))
}

/** The URL of a role's user (or of the user named `user`) on the server listening on `port`. */
export function roleUrl(port: number, role: Role, user = `hy-${role}`): string {
  return `redis://${user}:${ROLE_PASSWORD}@127.0.0.1:${port}`
}

/** One entry of `ACL LOG`: who was refused what, where, how many times. */
export interface AclLogEntry {
  username: string
  context: string
  reason: string
  object: string
  count: number
}

/** What `ACL LOG` holds. */
export async function aclLogEntries(admin: Redis): Promise<AclLogEntry[]> {
  const entries = (await admin.call('ACL', 'LOG', '1000')) as unknown[][]
  return entries.map((entry) => {
    const f: Record<string, unknown> = {}
    for (let i = 0; i < entry.length; i += 2) f[String(entry[i])] = entry[i + 1]
    return {
      username: String(f.username),
      context: String(f.context),
      reason: String(f.reason),
      object: String(f.object),
      count: Number(f.count),
    }
  })
}

/** What `ACL LOG` holds, one line per entry: user, context, what was refused and why. */
export async function aclLog(admin: Redis): Promise<string[]> {
  return (await aclLogEntries(admin)).map(
    (e) => `${e.username} (${e.context}) ${e.reason}: ${e.object} x${e.count}`,
  )
}
