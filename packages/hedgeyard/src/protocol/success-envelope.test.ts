import { describe, expect, it } from 'vitest'
import { encodeResult } from '../consumer/run-job.js'
import { decodeEnvelope } from './codec.js'
import { NOT_PLAIN_SUCCESS, successValueAt } from './success-envelope.js'

/** The value read from an envelope placed inside a results line, as the listener finds it. */
function readInLine(envelope: string): unknown {
  const line = Buffer.from(`01JOBID ${envelope}\nnext line`)
  const start = line.indexOf(' ') + 1
  return successValueAt(line, start, line.indexOf('\n'))
}

describe('successValueAt', () => {
  it("reads the value of a worker's success envelope as decodeEnvelope does", () => {
    const values = [
      null,
      0,
      42,
      -1.5e-7,
      '',
      'text with "quotes", a \\ and a line\nbreak',
      'é € 😀',
      true,
      false,
      undefined,
      [],
      [1, '2', { three: 3 }],
      {},
      { cost: 3 },
      { nested: { list: [null, { cost: 5 }] }, n: 12 },
      '"cost":5',
    ]
    for (const value of values) {
      const made = encodeResult(value, 'host-12-3', 2, 1_000_000)
      expect(made.outcome).toBe('ok')
      const envelope = made.envelope
      const decoded = decodeEnvelope(envelope)
      expect(decoded.ok).toBe(true)
      expect(readInLine(envelope)).toEqual(decoded.ok ? decoded.value : 'not a success')
      expect(readInLine(envelope)).not.toBe(NOT_PLAIN_SUCCESS)
    }
  })

  it('leaves every other envelope to decodeEnvelope', () => {
    const others = [
      // A reported cost, after the value or with none.
      '{"ok":true,"workerId":"w-1","copy":1,"value":{"a":1},"cost":3}',
      '{"ok":true,"workerId":"w-1","copy":1,"value":7,"cost":3}',
      '{"ok":true,"workerId":"w-1","copy":1,"cost":3}',
      // A failure, another spelling, a broken value, an escaped worker id.
      '{"ok":false,"workerId":"w-1","copy":1,"error":{"code":"X","name":"E","message":"m"}}',
      '{"ok": true,"workerId":"w-1","copy":1,"value":1}',
      '{"workerId":"w-1","ok":true,"copy":1,"value":1}',
      '{"ok":true,"workerId":"w-1","copy":1,"value":}',
      '{"ok":true,"workerId":"w-1","copy":1,"value":{"a":1}',
      '{"ok":true,"workerId":"w\\"1","copy":1,"value":1}',
      '{"ok":true,"workerId":"w-1","copy":,"value":1}',
      '{"ok":true,"workerId":"w-1"',
      '',
    ]
    for (const envelope of others) expect(readInLine(envelope)).toBe(NOT_PLAIN_SUCCESS)
  })
})
