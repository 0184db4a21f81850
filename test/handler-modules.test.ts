import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import {
  CLI,
  FIXTURES,
  redisUrl,
  spawnWorker,
  uniquePool,
  type WorkerProcess,
} from '@hedgeyard/testing/helpers'
import { afterAll, afterEach, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const running: WorkerProcess[] = []
afterEach(async () => {
  await Promise.all(running.splice(0).map((w) => w.stop('SIGKILL')))
})
// Modules with syntax errors are written here by the tests, not kept in test/fixtures, where the
// linter would fail on them.
const scratch = mkdtempSync(join(tmpdir(), 'hedgeyard-handlers-'))
afterAll(() => rmSync(scratch, { recursive: true, force: true }))

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args, '--redis', redisUrl()], {
      timeout: 30_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

function worker(handler: string) {
  return cli(['worker', '--pool', uniquePool('handler-load'), '--handler', handler])
}

describe('hedgeyard worker --handler', () => {
  it('runs a TypeScript handler (types, an enum, a sibling .ts imported as .js)', async () => {
    const pool = uniquePool('handler-ts')
    running.push(await spawnWorker({ pool, handler: 'typed-handler.ts', idPrefix: 'ts' }))
    const ok = await cli(['submit', '--pool', pool, '{"prompt":"hi","loud":true}'])
    expect(ok.stderr).toBe('')
    expect(JSON.parse(ok.stdout)).toEqual({ text: 'HELLO, HI', tone: 'loud', workerId: 'ts-1' })
    const failed = await cli(['submit', '--pool', pool, '{"prompt":"hi","fail":"no such model"}'])
    expect(failed.stderr).toBe('error HANDLER_ERROR: TypeError: no such model\n')
  })

  it('names the file and line of a syntax error, in the handler or in a module it imports', async () => {
    writeFileSync(join(scratch, 'helper.mjs'), 'export function reply(req) {\n  return { req, }}\n}\n')
    writeFileSync(
      join(scratch, 'nested.mjs'),
      "import { reply } from './helper.mjs'\nexport default async (req) => reply(req)\n",
    )
    const nested = await worker(join(scratch, 'nested.mjs'))
    expect(nested.code).toBe(1)
    expect(nested.stderr).toBe(
      `error ERROR: --handler ${join(scratch, 'nested.mjs')}: syntax error in ${join(scratch, 'helper.mjs')}:3\n` +
        "}\n^\nSyntaxError: Unexpected token '}'\n",
    )
    writeFileSync(
      join(scratch, 'broken.ts'),
      'export default async (req: string): Promise<string> => {\n  return req +\n}\n',
    )
    const ts = await worker(join(scratch, 'broken.ts'))
    expect(ts.code).toBe(1)
    expect(ts.stderr).toBe(
      `error ERROR: --handler ${join(scratch, 'broken.ts')}: syntax error at ${join(scratch, 'broken.ts')}:3:1: Expression expected.\n`,
    )
  })

  it('prints the file and the stack of a module that throws while it is imported', async () => {
    const file = join(FIXTURES, 'throws-at-import.js')
    const out = await worker(file)
    expect(out.code).toBe(1)
    const lines = out.stderr.trimEnd().split('\n')
    expect(lines.slice(0, 2)).toEqual([
      `error ERROR: --handler ${file}: ${file} threw while it was imported:`,
      'Error: MODEL_API_KEY is not set',
    ])
    // Its own frames, not those of the loader or the CLI.
    expect(lines.slice(2)).toEqual([
      expect.stringMatching(/^ {4}at readApiKey \(file:\/\/.*\/throws-at-import\.js:3:9\)$/),
      expect.stringMatching(/^ {4}at file:\/\/.*\/throws-at-import\.js:6:16$/),
    ])
  })
})
