import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { root } from '@hedgeyard/testing/helpers'
import { afterAll, describe, expect, it } from 'vitest'

// What a user installs: each public package packed as `pnpm pack` packs it for publishing (which
// also turns `workspace:*` ranges into versions), then its file list and its package.json read.
const PUBLIC = ['race', 'redis-server', 'hedgeyard', 'genai', 'dashboard', 'gateway', 'cli']
const out = mkdtempSync(join(tmpdir(), 'hy-pack-'))
afterAll(() => rmSync(out, { recursive: true, force: true }))

interface Packed {
  files: string[]
  manifest: Record<string, unknown>
}

function pack(name: string): Packed {
  const cwd = join(root, 'packages', name)
  const json = execFileSync('pnpm', ['pack', '--json', '--pack-destination', out], { cwd, encoding: 'utf8' })
  const { filename, files } = JSON.parse(json) as { filename: string; files: { path: string }[] }
  const tarball = join(out, filename.split('/').pop() ?? filename)
  const manifest = JSON.parse(
    execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  ) as Record<string, unknown>
  return { files: files.map((f) => f.path).sort(), manifest }
}

/** Every file an `exports`, `bin`, `main` or `types` entry names, without its leading `./`. */
function entryFiles(manifest: Record<string, unknown>): string[] {
  const found: string[] = []
  const walk = (v: unknown): void => {
    if (typeof v === 'string') found.push(v.replace(/^\.\//, ''))
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x)
  }
  walk(manifest.exports)
  walk(manifest.bin)
  walk(manifest.main)
  walk(manifest.types)
  return found
}

describe.each(PUBLIC)('the published package of packages/%s', (name) => {
  const packed = pack(name)

  it('holds its README, its package.json and built code only: no tests, source maps, build state or test support', () => {
    expect(packed.files).toContain('README.md')
    expect(packed.files).toContain('package.json')
    const allowed = /^(README\.md|package\.json|dist\/.+\.(js|d\.ts)|assets\/[\w.-]+\.(html|css|js))$/
    expect(packed.files.filter((f) => !allowed.test(f))).toEqual([])
    expect(packed.files.filter((f) => /\.test\.|test-support|testing|\/load\.js$/.test(f))).toEqual([])
  })

  it('ships every file its exports, bin and types name', () => {
    const missing = entryFiles(packed.manifest).filter((f) => !packed.files.includes(f))
    expect(missing).toEqual([])
  })

  it('depends on published versions only: no workspace ranges, no private packages', () => {
    const deps = {
      ...(packed.manifest.dependencies as Record<string, string> | undefined),
      ...(packed.manifest.peerDependencies as Record<string, string> | undefined),
    }
    expect(Object.entries(deps).filter(([, range]) => range.startsWith('workspace:'))).toEqual([])
    expect(Object.keys(deps).filter((d) => d === '@hedgeyard/testing' || d === '@hedgeyard/bench')).toEqual(
      [],
    )
    expect(packed.manifest.private).toBeUndefined()
  })
})

it('the library keeps the test harness out of its source: no library file imports the tests by path', () => {
  // git grep exits 1 when nothing matches, 0 with the matching files.
  const grep = spawnSync('git', ['grep', '-l', '-E', "from '(\\.\\./)+test/", '--', 'packages/'], {
    cwd: root,
    encoding: 'utf8',
  })
  expect(grep.stdout).toBe('')
  expect(grep.status).toBe(1)
})
