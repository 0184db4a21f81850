import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'

// A bare package specifier: `name` or `@scope/name`, then an optional subpath.
const PACKAGE_SPECIFIER = /^((?:@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*)(\/.*)?$/i

/** The conditions a worker process imports with, in the order Node matches them. */
const CONDITIONS: ReadonlySet<string> = new Set(['node', 'import', 'default'])

/**
 * Imports what `--handler` names: a file (relative to the working directory) when one exists
 * there, else a package, looked up first from the working directory up (the project's own
 * `node_modules`), then among the CLI's dependencies (`@hedgeyard/genai`).
 */
export async function importHandlerModule(spec: string): Promise<Record<string, unknown>> {
  const asPath = resolve(spec)
  const packageMatch = PACKAGE_SPECIFIER.exec(spec)
  if (existsSync(asPath) || !packageMatch) {
    return (await import(pathToFileURL(asPath).href)) as Record<string, unknown>
  }
  const entry = findPackageEntry(process.cwd(), packageMatch[1] as string, packageMatch[2] ?? '')
  if (entry) return (await import(pathToFileURL(entry).href)) as Record<string, unknown>
  try {
    return (await import(spec)) as Record<string, unknown>
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new Error(
      `--handler ${spec}: no such file, and no package of that name in node_modules from ${process.cwd()} up, nor beside the CLI`,
      { cause: err },
    )
  }
}

/** The file a package's entry point (or subpath) maps to, from the first `node_modules/<name>` above `from`. */
function findPackageEntry(from: string, name: string, subpath: string): string | undefined {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const root = join(dir, 'node_modules', name)
    const manifest = join(root, 'package.json')
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { exports?: unknown; main?: unknown }
      let target: string | undefined
      if (pkg.exports !== undefined) target = exportTarget(pkg.exports, `.${subpath}`)
      else if (subpath !== '') target = `.${subpath}`
      else target = typeof pkg.main === 'string' ? pkg.main : 'index.js'
      return target === undefined ? undefined : join(root, target)
    }
    if (dirname(dir) === dir) return undefined
  }
}

/** Where a package's `exports` map sends `key` ('.' or './sub') under the worker's conditions. */
function exportTarget(exports: unknown, key: string): string | undefined {
  if (typeof exports === 'string') return key === '.' ? exports : undefined
  if (typeof exports !== 'object' || exports === null) return undefined
  const map = exports as Record<string, unknown>
  const isSubpathMap = Object.keys(map).some((k) => k.startsWith('.'))
  return pickCondition(isSubpathMap ? map[key] : key === '.' ? map : undefined)
}

function pickCondition(target: unknown): string | undefined {
  if (typeof target === 'string') return target
  if (typeof target !== 'object' || target === null || Array.isArray(target)) return undefined
  for (const [condition, value] of Object.entries(target)) {
    if (!CONDITIONS.has(condition)) continue
    const picked = pickCondition(value)
    if (picked !== undefined) return picked
  }
  return undefined
}
