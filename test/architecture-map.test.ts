import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { root } from '@hedgeyard/testing/helpers'
import { describe, expect, it } from 'vitest'

// docs/architecture.md opens with the map of the library's modules: this keeps the map and the
// folder tree the same, so that a newcomer who reads one finds the other.

/** The paths the map names (folders end with '/'), from the indentation of its code block. */
function mapPaths(): string[] {
  const doc = readFileSync(join(root, 'docs/architecture.md'), 'utf8')
  const section = doc.slice(doc.indexOf('## The map'))
  const block = section.slice(
    section.indexOf('```\n') + 4,
    section.indexOf('\n```', section.indexOf('```\n') + 4),
  )
  const paths: string[] = []
  const folders: string[] = []
  for (const line of block.split('\n')) {
    const m = line.match(/^( *)(\S+)/)
    if (!m?.[2]) continue
    const depth = (m[1]?.length ?? 0) / 2
    folders.length = depth
    const path = folders.join('') + m[2]
    paths.push(path)
    if (path.endsWith('/')) folders[depth] = m[2]
  }
  return paths
}

/** A named path as a test of file paths: `<name>` stands for any file name part. */
function matcher(path: string): RegExp {
  const escaped = path.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/<[a-z]+>/g, '[^/]+')
  return new RegExp(`^${escaped}${path.endsWith('/') ? '' : '$'}`)
}

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)))
}

describe('the map of modules in docs/architecture.md', () => {
  const paths = mapPaths()

  it('names the library, its folders and the packages', () => {
    for (const p of ['packages/hedgeyard/src/', 'packages/hedgeyard/src/placement/', 'packages/testing/']) {
      expect(paths).toContain(p)
    }
    expect(paths.length).toBeGreaterThan(80)
  })

  it('names only files and folders that exist', () => {
    const library = filesUnder('packages/hedgeyard/src')
    const missing = paths.filter((p) =>
      p.includes('<') ? !library.some((f) => matcher(p).test(f)) : !existsSync(join(root, p)),
    )
    expect(missing).toEqual([])
  })

  it('names every source file of the library', () => {
    const sources = filesUnder('packages/hedgeyard/src').filter(
      (f) => /\.(ts|lua)$/.test(f) && !f.endsWith('.test.ts'),
    )
    const files = paths.filter((p) => !p.endsWith('/')).map(matcher)
    expect(sources.filter((f) => !files.some((m) => m.test(f)))).toEqual([])
  })
})
