import { createHash, timingSafeEqual } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** The gateway's API keys, kept as SHA-256 digests: a key is never held or logged in clear. */
export interface ApiKeys {
  readonly count: number
  /** The tenant a presented key belongs to, or undefined. Compares against every key, in constant time. */
  tenantOf(presented: string | undefined): string | undefined
}

/** The shortest key accepted: anything shorter can be guessed. */
export const MIN_KEY_LENGTH = 16

interface StoredKey {
  digest: Buffer
  tenant: string
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest()
}

/**
 * Reads keys, one per line or comma-separated: `<tenant>:<key>` or just `<key>` (its tenant is
 * then `key-` and the first 8 hex digits of its digest). Blank lines and `#` comments are skipped.
 * @throws Error naming the source and line of a key that is too short or a tenant that is not a name.
 */
export function parseApiKeys(text: string, source: string): { tenant: string; key: string }[] {
  const out: { tenant: string; key: string }[] = []
  text.split(/[\n,]/).forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const colon = line.indexOf(':')
    const key = colon < 0 ? line : line.slice(colon + 1).trim()
    const tenant = colon < 0 ? `key-${digest(key).toString('hex').slice(0, 8)}` : line.slice(0, colon).trim()
    if (key.length < MIN_KEY_LENGTH) {
      throw new Error(`${source}, entry ${i + 1}: an API key must have at least ${MIN_KEY_LENGTH} characters`)
    }
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(tenant)) {
      throw new Error(
        `${source}, entry ${i + 1}: a tenant name is 1-64 letters, digits and _ . - (got '${tenant}')`,
      )
    }
    out.push({ tenant, key })
  })
  return out
}

/** Loads keys from a file and/or a list (the environment's), keeping only their digests. */
export function loadApiKeys(sources: { file?: string | undefined; list?: string | undefined }): ApiKeys {
  const entries = [
    ...(sources.file ? parseApiKeys(readFileSync(sources.file, 'utf8'), sources.file) : []),
    ...(sources.list ? parseApiKeys(sources.list, 'HEDGEYARD_API_KEYS') : []),
  ]
  const stored: StoredKey[] = entries.map((e) => ({ digest: digest(e.key), tenant: e.tenant }))
  return {
    count: stored.length,
    tenantOf(presented) {
      if (presented === undefined || presented === '') return undefined
      const d = digest(presented)
      let found: string | undefined
      // Every stored key is compared, so the time taken says nothing about which one matched.
      for (const s of stored) if (timingSafeEqual(d, s.digest) && found === undefined) found = s.tenant
      return found
    },
  }
}
