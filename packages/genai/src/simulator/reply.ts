import { createHash } from 'node:crypto'

// 64 words, so one byte of a hash picks one (its top two bits dropped).
const WORDS: readonly string[] = (
  'amber anchor apple arrow aspen atlas basil beacon birch bloom border breeze cedar cinder clover ' +
  'comet copper coral delta dune ember fable fern field flint garnet glacier harbor hazel heron ' +
  'indigo island jasper juniper kernel lagoon lantern lumen maple meadow mesa nectar nimbus oak ' +
  'orbit pebble pine prism quartz raven reef ridge river sage shale signal slate spruce summit ' +
  'thistle tide umber valley willow'
).split(' ')

/**
 * The simulator's answer to a prompt: `words` words picked by SHA-256 of the prompt, joined by
 * single spaces. The same prompt always gets the same answer, so a test can check content.
 */
export function fakeGeminiText(prompt: string, words: number): string {
  const out: string[] = []
  for (let block = 0; out.length < words; block++) {
    const digest = createHash('sha256').update(`${block}\n${prompt}`).digest()
    for (const byte of digest) {
      if (out.length === words) break
      out.push(WORDS[byte & 63] as string)
    }
  }
  return out.join(' ')
}

/**
 * Splits an answer into streamed pieces of `chunkWords` words; every piece but the first starts
 * with the space that separates it from the one before, so the pieces concatenate to the answer.
 */
export function splitReply(text: string, chunkWords: number): string[] {
  const words = text.split(' ')
  const pieces: string[] = []
  for (let i = 0; i < words.length; i += chunkWords) {
    const piece = words.slice(i, i + chunkWords).join(' ')
    pieces.push(i === 0 ? piece : ` ${piece}`)
  }
  return pieces
}

/** Counts tokens the way the simulator does: whitespace-separated words. */
export function countWords(text: string): number {
  const trimmed = text.trim()
  return trimmed === '' ? 0 : trimmed.split(/\s+/).length
}
