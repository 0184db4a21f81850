import { describe, expect, it } from 'vitest'
import { type Deadline, Deadlines } from './deadlines.js'

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

  it('rearms for a deadline earlier than the one it waits for; a cancelled one leaves at once', async () => {
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

  it('keeps its order when deadlines are cancelled from the middle, in any order', async () => {
    const q = new Deadlines()
    const fired: number[] = []
    const now = Date.now()
    const handles = Array.from({ length: 64 }, (_, i) =>
      q.add(now + 5 + ((i * 37) % 64), () => fired.push(i)),
    )
    const kept = handles.map((_, i) => i).filter((i) => i % 3 !== 0)
    for (let i = 63; i >= 0; i--) if (i % 3 === 0) q.cancel(handles[i] as Deadline)
    expect(q.size).toBe(kept.length)
    await sleep(120)
    expect(fired).toEqual([...kept].sort((a, b) => ((a * 37) % 64) - ((b * 37) % 64)))
  })

  it('queues objects that carry their own fields, and holds the process only while one is due', () => {
    const q = new Deadlines({ isHoldingProcess: true })
    const d: Deadline = { at: Date.now() + 60_000, heapIndex: -1, fire() {} }
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const before = timers()
    q.insert(d)
    expect(d.heapIndex).toBe(0)
    expect(timers()).toBe(before + 1)
    q.cancel(d)
    expect(d.heapIndex).toBe(-1)
    // Still armed, but unreferenced: it no longer keeps the process alive.
    expect(timers()).toBe(before)
    q.insert(d)
    expect(timers()).toBe(before + 1)
    q.cancel(d)
  })
})
