import { describe, expect, it } from 'vitest'
import { WaitingJobs } from './waiting-jobs.js'

describe('WaitingJobs', () => {
  it('holds what a Map would through thousands of random sets and deletes, growing as needed', () => {
    const table = new WaitingJobs<number>()
    const reference = new Map<string, number>()
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return seed % n
    }
    for (let step = 0; step < 20_000; step++) {
      // Ids that share long prefixes, as job ids of one producer do.
      const id = `01JOB${String(random(600)).padStart(6, '0')}`
      if (random(3) === 0) {
        table.delete(id)
        reference.delete(id)
      } else {
        table.set(id, step)
        reference.set(id, step)
      }
      if (step % 997 === 0) {
        expect(table.size).toBe(reference.size)
        expect(table.ids().sort()).toEqual([...reference.keys()].sort())
      }
    }
    for (const [id, value] of reference) expect(table.get(id)).toBe(value)
    expect(table.get('01JOB999999')).toBeUndefined()
  })

  it('finds a job by the bytes of its id in a message, and deletes it by its slot', () => {
    const table = new WaitingJobs<string>()
    for (let i = 0; i < 100; i++) table.set(`job-${i}`, `handler ${i}`)
    const message = Buffer.from('job-42 {"ok":true}\njob-420 {}\njob-7 {}')
    const slot = table.slotOfBytes(message, 0, 6)
    expect(table.idAt(slot)).toBe('job-42')
    expect(table.valueAt(slot)).toBe('handler 42')
    expect(table.slotOfBytes(message, 19, 26)).toBe(-1)
    table.deleteAt(slot)
    expect(table.slotOfBytes(message, 0, 6)).toBe(-1)
    expect(table.get('job-7')).toBe('handler 7')
    expect(table.size).toBe(99)
  })
})
