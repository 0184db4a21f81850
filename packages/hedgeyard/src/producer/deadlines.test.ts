import { describe, expect, it } from 'vitest'
import { Deadlines } from './deadlines.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe('Deadlines', () => {
  it('fires each deadline once, earliest first, and never a cancelled one', async () => {
    const q = new Deadlines()
    const fired: number[] = []
    const now = Date.now()
    const offsets = [40, 5, 25, 15, 35, 10, 30, 20]
    const handles = offsets.map((ms) => q.add(now + ms, () => fired.push(ms)))
    q.cancel(handles[2] as never) // 25
    q.cancel(handles[2] as never) // twice: no effect
    await sleep(80)
    expect(fired).toEqual([5, 10, 15, 20, 30, 35, 40])
    expect(q.size).toBe(0)
  })

  it('rearms for a deadline earlier than the one it waits for, and compacts cancelled ones', async () => {
    const q = new Deadlines()
    const fired: string[] = []
    q.add(Date.now() + 10_000, () => fired.push('late'))
    const many = Array.from({ length: 200 }, (_, i) =>
      q.add(Date.now() + 5_000 + i, () => fired.push('many')),
    )
    for (const d of many) q.cancel(d)
    expect(q.size).toBe(1)
    q.add(Date.now() + 5, () => fired.push('soon'))
    await sleep(40)
    expect(fired).toEqual(['soon'])
  })
})
