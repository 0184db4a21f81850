import { encodeTime, ulid } from 'ulid'

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const CHAR_CODES = Array.from(ALPHABET, (c) => c.charCodeAt(0))
const HALF = 2 ** 20

/**
 * Job ids as ULIDs (26 Crockford base-32 characters: 48 bits of time, then 80 that make them
 * unique), sortable by creation time. The 80 bits are 40 random bits drawn once per factory and a
 * 40-bit counter: drawing randomness for every id, as `ulid()` does, cost a third of a producer's
 * CPU in a measured prototype. An id is made as one string from its character codes (joining
 * pieces made one string per piece), and the counter is kept in two 20-bit halves, which stay
 * small integers where one 40-bit number would be a new heap number per id.
 */
export function jobIdFactory(): () => string {
  const codes = new Array<number>(26).fill(0)
  const random = ulid().slice(10, 18)
  for (let i = 0; i < 8; i++) codes[10 + i] = random.charCodeAt(i)
  const start = Math.floor(Math.random() * 2 ** 32)
  let high = Math.floor(start / HALF)
  let low = start % HALF
  let lastMs = -1
  return () => {
    const now = Date.now()
    if (now !== lastMs) {
      lastMs = now
      const time = encodeTime(now, 10)
      for (let i = 0; i < 10; i++) codes[i] = time.charCodeAt(i)
    }
    if (++low === HALF) {
      low = 0
      high = (high + 1) % HALF
    }
    let c = low
    for (let i = 25; i >= 22; i--) {
      codes[i] = CHAR_CODES[c & 31] as number
      c >>= 5
    }
    c = high
    for (let i = 21; i >= 18; i--) {
      codes[i] = CHAR_CODES[c & 31] as number
      c >>= 5
    }
    return String.fromCharCode.apply(null, codes)
  }
}
