import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { root } from '@hedgeyard/testing/helpers'
import { describe, expect, it } from 'vitest'

// The README, docs/ and each package's README link the code and the tests that show what they
// say. This keeps those links true: every relative link reaches a file or folder inside the
// repository (and a heading of a Markdown file, when it names one), and a link written
// `[test: <title>](file.test.ts)` names a test that file really has.

/** The Markdown a user reads: the README, docs/ and each package's README. */
function docs(): string[] {
  const files = ['README.md']
  for (const name of readdirSync(join(root, 'docs'), { recursive: true }) as string[]) {
    if (name.endsWith('.md')) files.push(join('docs', name))
  }
  for (const pkg of readdirSync(join(root, 'packages'))) {
    if (existsSync(join(root, 'packages', pkg, 'README.md'))) files.push(join('packages', pkg, 'README.md'))
  }
  return files
}

interface Link {
  doc: string
  text: string
  target: string
}

/** The inline links of a Markdown file, outside code blocks and code spans. */
function links(doc: string): Link[] {
  const text = readFileSync(join(root, doc), 'utf8')
    .replace(/^```[\s\S]*?^```/gm, '')
    .replace(/`[^`\n]*`/g, '``')
  const found: Link[] = []
  for (const m of text.matchAll(/\[((?:[^\]\n]|\][^(])*)\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
    found.push({ doc, text: m[1] as string, target: m[2] as string })
  }
  return found
}

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces as dashes. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*]/g, '')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

function anchorsOf(file: string): Set<string> {
  const anchors = new Set<string>()
  const seen = new Map<string, number>()
  const text = readFileSync(file, 'utf8').replace(/^```[\s\S]*?^```/gm, '')
  for (const m of text.matchAll(/^#{1,6}\s+(.+)$/gm)) {
    const base = anchorOf(m[1] as string)
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    anchors.add(n === 0 ? base : `${base}-${n}`)
  }
  return anchors
}

/** The titles of a test file's tests and suites, as written in its source. */
function testTitles(file: string): string[] {
  const source = readFileSync(file, 'utf8')
  const titles: string[] = []
  for (const m of source.matchAll(
    /\b(?:it|test|describe)(?:\.(?:each|runIf|skipIf)\([^)]*\))?\(\s*(['"`])((?:\\.|(?!\1).)*)\1/g,
  )) {
    titles.push((m[2] as string).replace(/\\(.)/g, '$1'))
  }
  return titles
}

const all = docs().flatMap(links)
const local = all.filter((l) => !/^[a-z][a-z0-9+.-]*:/i.test(l.target) && !l.target.startsWith('#'))

describe('links in the README and docs/', () => {
  it('finds the docs and their links', () => {
    expect(docs()).toContain('docs/reliability.md')
    expect(local.length).toBeGreaterThan(30)
  })

  it('reach files inside the repository', () => {
    const broken: string[] = []
    for (const l of local) {
      const path = decodeURIComponent(l.target.split('#')[0] as string)
      const file = resolve(root, dirname(l.doc), path)
      const inside = relative(root, file)
      if (inside.startsWith('..') || inside.includes('node_modules'))
        broken.push(`${l.doc}: ${l.target} (outside)`)
      else if (!existsSync(file)) broken.push(`${l.doc}: ${l.target}`)
    }
    expect(broken).toEqual([])
  })

  it('name headings that exist', () => {
    const broken: string[] = []
    for (const l of all) {
      const [path, anchor] = l.target.split('#')
      if (anchor === undefined || anchor === '' || /^[a-z][a-z0-9+.-]*:/i.test(l.target)) continue
      const file = path === '' ? join(root, l.doc) : resolve(root, dirname(l.doc), path as string)
      if (!file.endsWith('.md') || !existsSync(file) || statSync(file).isDirectory()) continue
      // GitHub's line anchors of code files are not headings.
      if (!anchorsOf(file).has(anchor)) broken.push(`${l.doc}: ${l.target}`)
    }
    expect(broken).toEqual([])
  })

  it('name real tests where they say "test: <title>"', () => {
    const broken: string[] = []
    for (const l of local) {
      const m = l.text.match(/^test: (.+)$/)
      if (!m) continue
      const file = resolve(root, dirname(l.doc), l.target.split('#')[0] as string)
      if (!existsSync(file)) continue
      const title = (m[1] as string).replace(/\\(.)/g, '$1')
      if (!testTitles(file).some((t) => t === title || t.includes(title))) broken.push(`${l.doc}: ${title}`)
    }
    expect(broken).toEqual([])
  })
})
