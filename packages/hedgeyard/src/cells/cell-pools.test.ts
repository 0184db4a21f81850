import { describe, expect, it } from 'vitest'
import { cellPools, checkCells, MAX_CELLS, sessionCell } from './cell-pools.js'

describe('cell pools', () => {
  it('names cell i of chat chat.i', () => {
    expect(cellPools('chat', 3)).toEqual(['chat.0', 'chat.1', 'chat.2'])
  })

  it('refuses a cell count that is not a whole number from 1 to MAX_CELLS, naming the field', () => {
    for (const bad of [0, -1, 1.5, MAX_CELLS + 1, '4', Number.NaN, undefined]) {
      expect(() => checkCells(bad)).toThrow(/cells must be an integer between 1 and 1024/)
    }
    expect(checkCells(MAX_CELLS)).toBe(MAX_CELLS)
    expect(() => checkCells(0, '--cells')).toThrow(/--cells must be/)
  })

  it('refuses a pool name whose last cell would be too long', () => {
    expect(() => cellPools('p'.repeat(97), 101)).toThrow(
      /pool \(as its last cell's name, with 101 cells\) must be 1-100/,
    )
    expect(cellPools('p'.repeat(97), 100)).toHaveLength(100)
  })

  it('puts a session in the same cell every time, and spreads sessions over all cells', () => {
    // FNV-1a of "a" is 0xe40c292c: a fixed value, so another process (or language) agrees.
    expect(sessionCell('a', 1_000_000)).toBe(0xe40c292c % 1_000_000)
    const counts = new Array(8).fill(0)
    for (let i = 0; i < 8000; i++) counts[sessionCell(`user-${i}`, 8)]++
    for (const c of counts) expect(c).toBeGreaterThan(800)
  })
})
