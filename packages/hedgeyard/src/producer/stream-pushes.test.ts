import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { parsePushes, StreamPushes } from './stream-pushes.js'
import type { OutputSink, StreamReader } from './stream-reader.js'

const message = (...records: [string, string][]) =>
  Buffer.from(`~\n${records.map(([head, data]) => `${head} ${Buffer.byteLength(data)}\n${data}`).join('\n')}`)

describe('parsePushes', () => {
  it('reads chunk and end records, data with line breaks and multi-byte text included', () => {
    const m = message(
      ['j1 1 2 w1 1-0', '["a\\n","é"]'],
      ['j2 3 1 - -', '"x\ny"'],
      ['j1 end 3 - -', '{"ok":true}'],
    )
    const records = parsePushes(m)
    expect(
      records?.map(({ dataStart, dataEnd, ...r }) => ({
        ...r,
        data: m.toString('utf8', dataStart, dataEnd),
      })),
    ).toEqual([
      {
        jobId: 'j1',
        first: 1,
        isEnd: false,
        count: 2,
        owner: { workerId: 'w1', entryId: '1-0' },
        data: '["a\\n","é"]',
      },
      { jobId: 'j2', first: 3, isEnd: false, count: 1, owner: undefined, data: '"x\ny"' },
      { jobId: 'j1', first: 3, isEnd: true, count: 0, owner: undefined, data: '{"ok":true}' },
    ])
  })

  it('refuses a message that is not of the layout, whatever is wrong in it', () => {
    const good = message(['j 1 1 - -', '1'])
    expect(parsePushes(good)).toHaveLength(1)
    for (const bad of [
      Buffer.from('j {"ok":true}'),
      Buffer.from('~'),
      Buffer.from('~\nj 1 1 - - 5\n1'),
      Buffer.from('~\nj 1 1 - -\n1'),
      Buffer.from('~\nj 1 1 - - 1 extra\n1'),
      Buffer.from('~\nj 0 1 - - 1\n1'),
      Buffer.from('~\nj 1 0 - - 1\n1'),
      Buffer.from('~\nj 1x 1 - - 1\n1'),
      Buffer.from('~\nj end 0 - - 1\n1'),
      Buffer.from('~\nj 1 1 - - 1\n1X'),
      Buffer.from('~\n 1 1 - - 1\n1'),
      Buffer.from('~\nj 1 1 - - 1'),
    ]) {
      expect({ bad: bad.toString(), records: parsePushes(bad) }).toEqual({
        bad: bad.toString(),
        records: undefined,
      })
    }
  })
})

/** A stream's sink that records what it gets; `wantsMore` as set. */
function recordingSink(key: string) {
  const got: (string | number)[] = []
  const state: { isWanting: boolean; owner: unknown } = { isWanting: true, owner: undefined }
  const output: OutputSink = {
    key,
    wantsMore: () => state.isWanting,
    onChunk(seq, value, owner) {
      if (seq === 1) state.owner = owner
      got.push(`${seq}:${JSON.stringify(value)}`)
    },
    onEnd(envelope) {
      got.push(`end ${envelope}`)
    },
    onMalformed(reason) {
      got.push(`malformed ${reason}`)
    },
  }
  return {
    got,
    output,
    owner: () => state.owner,
    set isWanting(v: boolean) {
      state.isWanting = v
    },
  }
}

/** A reader that records the streams handed to it, and from where, and those it was told to forget. */
function recordingReader() {
  const added: string[] = []
  const removed: string[] = []
  const held = new Map<string, OutputSink>()
  const reader = {
    add: (sink: OutputSink, afterId: string) => {
      added.push(`${sink.key} after ${afterId}`)
      held.set(sink.key, sink)
    },
    remove: (sink: OutputSink) => {
      if (held.get(sink.key) === sink) {
        held.delete(sink.key)
        removed.push(sink.key)
      }
    },
  }
  return { added, removed, held, reader: () => reader as unknown as StreamReader }
}

describe('StreamPushes', () => {
  let pushes: StreamPushes | undefined
  afterEach(() => pushes?.close())
  const make = () => {
    const r = recordingReader()
    pushes = new StreamPushes(r.reader, pino({ level: 'silent' }))
    return { pushes, added: r.added, removed: r.removed, held: r.held }
  }

  it('delivers each chunk once and in order, overlapping records too, then the end that follows them', () => {
    const { pushes, added } = make()
    const a = recordingSink('out:a')
    pushes.add('a', a.output)
    pushes.onMessage(message(['a 1 2 w 1-1', '[1,2]'], ['a 2 2 - -', '[2,3]'], ['a 1 1 - -', '1']))
    pushes.onMessage(message(['a 4 1 - -', '4'], ['a end 5 - -', '{"ok":true}']))
    expect(a.got).toEqual(['1:1', '2:2', '3:3', '4:4', 'end {"ok":true}'])
    expect(a.owner()).toEqual({ workerId: 'w', entryId: '1-1' })
    expect(added).toEqual([])
    expect(pushes.size).toBe(0)
  })

  it('hands a stream to the reader after its last chunk at a gap, an end that does not follow, a caller behind, or chunks that are not JSON', () => {
    const { pushes, added } = make()
    const sinks = ['gap', 'end', 'behind', 'json'].map((id) => {
      const s = recordingSink(`out:${id}`)
      pushes.add(id, s.output)
      return s
    })
    const [gap, end, behind, json] = sinks as [
      ReturnType<typeof recordingSink>,
      ReturnType<typeof recordingSink>,
      ReturnType<typeof recordingSink>,
      ReturnType<typeof recordingSink>,
    ]
    pushes.onMessage(message(['gap 1 1 - -', '1'], ['end 1 2 - -', '[1,2]'], ['behind 1 1 - -', '1']))
    behind.isWanting = false
    pushes.onMessage(
      message(
        ['gap 3 1 - -', '3'],
        ['end end 4 - -', '{"ok":true}'],
        ['behind 2 1 - -', '2'],
        ['json 1 2 - -', '[1]'],
      ),
    )
    expect(added).toEqual([
      'out:gap after 0-1',
      'out:end after 0-2',
      'out:behind after 0-1',
      'out:json after 0-0',
    ])
    expect([gap.got, end.got, behind.got, json.got]).toEqual([['1:1'], ['1:1', '2:2'], ['1:1'], []])
    expect(pushes.size).toBe(0)
    // A push that follows on from what was delivered (the lost one, sent again) takes it back.
    pushes.onMessage(message(['gap 2 1 - -', '2']))
    expect(gap.got).toEqual(['1:1', '2:2'])
    expect(pushes.size).toBe(1)
  })

  it('hands every stream over for a message it cannot read and after a resubscribe; a stream removed is not', () => {
    const { pushes, added } = make()
    pushes.add('a', recordingSink('out:a').output)
    pushes.add('b', recordingSink('out:b').output)
    const c = recordingSink('out:c')
    pushes.add('c', c.output)
    pushes.remove('c', c.output)
    pushes.onMessage(Buffer.from('~\nnot a record'))
    expect(added).toEqual(['out:a after 0-0', 'out:b after 0-0'])
    pushes.add('d', recordingSink('out:d').output)
    pushes.handOverAll('the subscriber reconnected')
    expect(added).toEqual(['out:a after 0-0', 'out:b after 0-0', 'out:d after 0-0'])
  })

  it('takes a stream back from the reader with the first push that follows on from what the reader delivered', () => {
    const { pushes, added, removed, held } = make()
    const a = recordingSink('out:a')
    pushes.add('a', a.output)
    pushes.onMessage(message(['a 1 1 w 1-1', '1'], ['a 3 1 - -', '3']))
    expect(added).toEqual(['out:a after 0-1'])
    // A push that does not follow on from the reader's last chunk stays the reader's business.
    pushes.onMessage(message(['a 4 1 - -', '4']))
    expect(a.got).toEqual(['1:1'])
    const viaReader = held.get('out:a') as OutputSink
    viaReader.onChunk(2, 2, undefined)
    viaReader.onChunk(3, 3, undefined)
    viaReader.onChunk(4, 4, undefined)
    // The next push follows on (a record overlapping what the reader gave too): back to pushes.
    pushes.onMessage(message(['a 4 2 - -', '[4,5]']))
    expect(removed).toEqual(['out:a'])
    pushes.onMessage(message(['a end 6 - -', '{"ok":true}']))
    expect(a.got).toEqual(['1:1', '2:2', '3:3', '4:4', '5:5', 'end {"ok":true}'])
    expect(pushes.size).toBe(0)
  })

  it('leaves a stream with the reader while its caller is behind, or for an end the reader has not reached', () => {
    const { pushes, removed, held } = make()
    const a = recordingSink('out:a')
    pushes.add('a', a.output)
    pushes.handOverAll('test')
    a.isWanting = false
    pushes.onMessage(message(['a 1 1 w 1-1', '1']))
    a.isWanting = true
    pushes.onMessage(message(['a end 3 - -', '{"ok":true}']))
    expect(removed).toEqual([])
    expect(a.got).toEqual([])
    const viaReader = held.get('out:a') as OutputSink
    viaReader.onChunk(1, 1, undefined)
    viaReader.onChunk(2, 2, undefined)
    viaReader.onEnd('{"ok":true}')
    expect(a.got).toEqual(['1:1', '2:2', 'end {"ok":true}'])
  })

  it('makes the reader forget a stream it holds when the stream ends here', () => {
    const { pushes, removed } = make()
    const a = recordingSink('out:a')
    pushes.add('a', a.output)
    pushes.handOverAll('test')
    pushes.remove('a', a.output)
    expect(removed).toEqual(['out:a'])
  })
})
