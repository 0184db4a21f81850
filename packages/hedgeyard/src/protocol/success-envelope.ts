/** What {@link successValueAt} gives for an envelope it does not read: decode it whole. */
export const NOT_PLAIN_SUCCESS: unique symbol = Symbol('not a plain success envelope')

const bytesOf = (text: string) => Uint8Array.from(text, (c) => c.charCodeAt(0))
const HEAD = bytesOf('{"ok":true,"workerId":"')
const COPY = bytesOf('","copy":')
const VALUE = bytesOf(',"value":')
const COST = bytesOf(',"cost":')
const QUOTE = 0x22
const BACKSLASH = 0x5c
const CLOSE = 0x7d

/**
 * The value of a success envelope found in `bytes[start..end)` (a line of a results message),
 * parsing only the value: the envelope as a worker writes it (`successEnvelope` in
 * consumer/run-job.ts), `{"ok":true,"workerId":"<id>","copy":<n>,"value":<json>}`, with the value
 * left out when it is undefined. Anything else (a failure, a reported cost, another spelling, a
 * value that is not JSON) gives NOT_PLAIN_SUCCESS, and the caller decodes the envelope with
 * decodeEnvelope. A value given is the `value` decodeEnvelope would give: the bytes checked are
 * exactly the other fields of such an envelope. Most results of a pool are this, and the envelope
 * object, its worker id and the line's text are then never made.
 */
export function successValueAt(bytes: Buffer, start: number, end: number): unknown {
  if (!hasAt(bytes, start, end, HEAD)) return NOT_PLAIN_SUCCESS
  let p = start + HEAD.length
  // The worker id is a wire id: no quote or backslash in it to unescape.
  while (p < end && bytes[p] !== QUOTE) {
    if (bytes[p] === BACKSLASH) return NOT_PLAIN_SUCCESS
    p++
  }
  if (!hasAt(bytes, p, end, COPY)) return NOT_PLAIN_SUCCESS
  p += COPY.length
  const digits = p
  while (p < end && isDigit(bytes[p] as number)) p++
  if (p === digits) return NOT_PLAIN_SUCCESS
  if (p === end - 1 && bytes[p] === CLOSE) return undefined
  if (bytes[end - 1] !== CLOSE || !hasAt(bytes, p, end - 1, VALUE)) return NOT_PLAIN_SUCCESS
  p += VALUE.length
  // A cost the handler reported comes after the value: `,"cost":<n>}` ends the envelope then (a
  // value that is an object or an array ends with its own bracket, a string with its quote).
  let q = end - 2
  while (q > p && isDigit(bytes[q] as number)) q--
  if (q < end - 2 && hasAt(bytes, q - COST.length + 1, end, COST)) return NOT_PLAIN_SUCCESS
  try {
    return JSON.parse(bytes.toString('utf8', p, end - 1))
  } catch {
    return NOT_PLAIN_SUCCESS
  }
}

function hasAt(bytes: Uint8Array, at: number, end: number, pattern: Uint8Array): boolean {
  if (at < 0 || at + pattern.length > end) return false
  for (let i = 0; i < pattern.length; i++) if (bytes[at + i] !== pattern[i]) return false
  return true
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39
}
