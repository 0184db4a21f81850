import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { createRequire, register } from 'node:module'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { TsHooksData } from './ts-hooks.js'

// A bare package specifier: `name` or `@scope/name`, then an optional subpath.
const PACKAGE_SPECIFIER = /^((?:@[a-z0-9][\w.~-]*\/)?[a-z0-9][\w.~-]*)(\/.*)?$/i

/** The conditions a worker process imports with, in the order Node matches them. */
const CONDITIONS: ReadonlySet<string> = new Set(['node', 'import', 'default'])

/** A TypeScript module, compiled as it loads (see ts-hooks.ts). */
const TS_FILE = /\.m?ts$/

/**
 * Imports what `--handler` names: a file (relative to the working directory) when one exists
 * there, else a package, looked up first from the working directory up (the project's own
 * `node_modules`), then among the CLI's dependencies (`@hedgeyard/genai`). A `.ts` or `.mts` file
 * runs through the `typescript` package of its project (see ts-hooks.ts). A module that fails to
 * load is reported with its file: the line of a syntax error, the stack of an error it threw.
 */
export async function importHandlerModule(spec: string): Promise<Record<string, unknown>> {
  const asPath = resolve(spec)
  const packageMatch = PACKAGE_SPECIFIER.exec(spec)
  let url: string | undefined
  if (existsSync(asPath) || !packageMatch) {
    url = pathToFileURL(asPath).href
  } else {
    const entry = findPackageEntry(process.cwd(), packageMatch[1] as string, packageMatch[2] ?? '')
    if (entry) url = pathToFileURL(entry).href
  }
  if (url !== undefined && TS_FILE.test(url)) enableTypeScript(fileURLToPath(url), spec)
  try {
    return (await import(url ?? spec)) as Record<string, unknown>
  } catch (err) {
    if (url === undefined && (err as { code?: unknown }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new Error(
        `--handler ${spec}: no such file, and no package of that name in node_modules from ${process.cwd()} up, nor beside the CLI`,
        { cause: err },
      )
    }
    throw await loadError(spec, url ?? spec, err)
  }
}

/** Where the hooks found `typescript`, once they are registered. */
let typescriptPath: string | undefined

/** Registers the TypeScript hooks (once), or fails saying how to run a `.ts` handler. */
function enableTypeScript(file: string, spec: string): void {
  if (typescriptPath !== undefined) return
  // The project's own compiler first, then one beside the CLI.
  for (const from of [file, fileURLToPath(import.meta.url)]) {
    try {
      typescriptPath = createRequire(from).resolve('typescript')
      break
    } catch {}
  }
  if (typescriptPath === undefined) {
    // Node's own type stripping (22.6 and later), when it is on, runs what it can.
    if ((process.features as { typescript?: unknown }).typescript) return
    throw new Error(
      `--handler ${spec}: a TypeScript handler needs the typescript package, found neither from ${dirname(file)} up nor beside the CLI: ` +
        'npm install --save-dev typescript in its project (or compile the handler to .js and pass that)',
    )
  }
  const data: TsHooksData = { typescriptPath }
  register(new URL('./ts-hooks.js', import.meta.url), { data })
  // Stacks of the handler's errors then name its .ts lines.
  process.setSourceMapsEnabled(true)
}

/** The error to print for a module that failed to load: its file, and the line or the stack. */
async function loadError(spec: string, url: string, err: unknown): Promise<Error> {
  const file = url.startsWith('file:') ? fileURLToPath(url) : url
  if (!(err instanceof Error)) {
    return new Error(`--handler ${spec}: ${file} threw ${String(err)} while it was imported`, { cause: err })
  }
  // The TypeScript hooks name the place themselves ('<file>.ts:<line>:<col>: ...').
  if (err instanceof SyntaxError && /^.+\.m?ts:\d+:\d+: /.test(err.message)) {
    return new Error(`--handler ${spec}: syntax error at ${err.message}`, { cause: err })
  }
  // The frames of the module's own code, without those of the loader and the CLI below them.
  const lines = (err.stack ?? `${err.name}: ${err.message}`).split('\n')
  const loaderFrame = lines.findIndex((l) => /^\s+at .*node:internal\/modules\//.test(l))
  const ownLines = loaderFrame < 0 ? lines : lines.slice(0, loaderFrame)
  // A syntax error found while parsing has no frame of the user's code (and Node 20 leaves out its
  // file and line); one thrown by running code (JSON.parse) has, and is reported as thrown.
  const isParseError = err instanceof SyntaxError && !ownLines.some((l) => /^\s+at /.test(l))
  if (!isParseError) {
    return new Error(`--handler ${spec}: ${file} threw while it was imported:\n${ownLines.join('\n')}`, {
      cause: err,
    })
  }
  const where = await locateSyntaxError(url)
  return new Error(
    `--handler ${spec}: syntax error in ${where ?? `${file} or a module it imports`}\nSyntaxError: ${err.message}`,
    { cause: err },
  )
}

/**
 * Where a syntax error is, from Node's own report of it: a process whose import of the module
 * fails prints the file and line, the line of code and a caret (an import inside this process
 * gets the error without them on Node 20). The module graph is only parsed, never run: a syntax
 * error anywhere in it stops every module before evaluation. Undefined when the report has none.
 */
function locateSyntaxError(url: string): Promise<string | undefined> {
  const args: string[] = []
  if (typescriptPath !== undefined) {
    const hooks = new URL('./ts-hooks.js', import.meta.url).href
    const data: TsHooksData = { typescriptPath }
    const source = `import{register}from'node:module';register(${JSON.stringify(hooks)},{data:${JSON.stringify(data)}})`
    args.push('--import', `data:text/javascript,${encodeURIComponent(source)}`)
  }
  args.push('--input-type=module', '-e', `await import(${JSON.stringify(url)})`)
  return new Promise((done) => {
    execFile(process.execPath, args, { timeout: 15_000 }, (_err, _stdout, stderr) => {
      const lines = String(stderr).split('\n')
      const end = lines.findIndex((l) => l.startsWith('SyntaxError'))
      const first = lines[0] ?? ''
      if (end < 1 || !/:\d+$/.test(first)) return done(undefined)
      const location = first.startsWith('file:')
        ? first.replace(/^(file:.*?)(:\d+)$/, (_, u: string, line: string) => fileURLToPath(u) + line)
        : first
      done([location, ...lines.slice(1, end)].join('\n').trimEnd())
    })
  })
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
