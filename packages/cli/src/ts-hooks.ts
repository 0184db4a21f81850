import { readFile } from 'node:fs/promises'
import type { InitializeHook, LoadHook, ResolveHook } from 'node:module'
import { fileURLToPath, pathToFileURL } from 'node:url'

/**
 * Module hooks (`module.register`) that run TypeScript handler modules on Node 20, which cannot:
 * a `.ts` or `.mts` file is compiled to an ES module by the `typescript` package the worker found
 * (the project's own, else one beside the CLI), one file at a time (`transpileModule`: types are
 * removed, never checked), with an inline source map so that stacks name the `.ts` lines. An import
 * of `./x.js` from a TypeScript file finds `./x.ts` when there is no `./x.js` (the way `tsc` with
 * `NodeNext` resolves). A syntax error fails the import with the file, line and column.
 */

/** What `registerTypeScript` passes: where the `typescript` package's entry point is. */
export interface TsHooksData {
  typescriptPath: string
}

/** The part of the `typescript` package these hooks use. */
interface TypeScriptApi {
  transpileModule(
    source: string,
    options: { fileName: string; reportDiagnostics: boolean; compilerOptions: Record<string, unknown> },
  ): {
    outputText: string
    diagnostics?: {
      file?: { getLineAndCharacterOfPosition(pos: number): { line: number; character: number } }
      start?: number
      messageText: unknown
    }[]
  }
  flattenDiagnosticMessageText(messageText: unknown, newLine: string): string
  ModuleKind: { ESNext: number }
  ScriptTarget: { ES2022: number }
}

const TS_FILE = /\.m?ts$/
const JS_SPECIFIER = /\.(m?)js$/

let ts: TypeScriptApi | undefined

export const initialize: InitializeHook<TsHooksData> = async (data) => {
  const mod = (await import(pathToFileURL(data.typescriptPath).href)) as { default?: TypeScriptApi }
  ts = mod.default ?? (mod as unknown as TypeScriptApi)
}

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  try {
    return await nextResolve(specifier, context)
  } catch (err) {
    const fromTs = context.parentURL !== undefined && TS_FILE.test(new URL(context.parentURL).pathname)
    if (
      !fromTs ||
      !JS_SPECIFIER.test(specifier) ||
      (err as { code?: unknown }).code !== 'ERR_MODULE_NOT_FOUND'
    ) {
      throw err
    }
    return nextResolve(specifier.replace(JS_SPECIFIER, '.$1ts'), context)
  }
}

export const load: LoadHook = async (url, context, nextLoad) => {
  if (ts === undefined || !url.startsWith('file:') || !TS_FILE.test(new URL(url).pathname)) {
    return nextLoad(url, context)
  }
  const fileName = fileURLToPath(url)
  const out = ts.transpileModule(await readFile(fileName, 'utf8'), {
    fileName,
    reportDiagnostics: true,
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      inlineSourceMap: true,
      inlineSources: true,
    },
  })
  const first = out.diagnostics?.[0]
  if (first !== undefined) {
    const at = first.file?.getLineAndCharacterOfPosition(first.start ?? 0)
    const where = at === undefined ? fileName : `${fileName}:${at.line + 1}:${at.character + 1}`
    throw new SyntaxError(`${where}: ${ts.flattenDiagnosticMessageText(first.messageText, '\n')}`)
  }
  return { format: 'module', source: out.outputText, shortCircuit: true }
}
