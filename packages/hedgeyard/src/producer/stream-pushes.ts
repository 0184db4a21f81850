import type { Logger } from 'pino'
import type { OutputSink, StreamReader } from './stream-reader.js'

/** How long a stream may hear no push before it is read from its output stream instead. */
export const PUSH_IDLE_MS = 2_000
/** How often streams are checked for that. */
const IDLE_CHECK_MS = 500

const NEWLINE = 0x0a
/** A message of pushes begins with '~' (a line of results begins with a job id). */
export const PUSH_MARK = 0x7e

interface Live {
  output: OutputSink
  /** The seq of the next chunk this stream takes. */
  next: number
  /** When it last heard a push (ms, performance.now()). */
  heardAt: number
}

/** A stream handed to the reader: what it delivers goes through `wrapper`, which counts it. */
interface Read {
  output: OutputSink
  wrapper: OutputSink
  /** The last seq delivered (by pushes, then by the reader). */
  delivered: number
}

/** One record of a message of pushes (lib/out.lua has the layout). */
interface PushRecord {
  jobId: string
  /** The first chunk's seq; for an end, the seq of the end entry. */
  first: number
  isEnd: boolean
  count: number
  owner: { workerId: string; entryId: string } | undefined
  /** Where its data lies in the message (decoded only for a stream fed here). */
  dataStart: number
  dataEnd: number
}

/**
 * The fast path of this producer's own streams: the chunk script pushes each call's chunks to the
 * job's producer on its results channel, and the script that ends a job pushes its end, so a
 * stream the producer opened is fed without reading it. The output stream stays the record: a
 * stream is handed to the reader (one XREAD over every stream it holds), from the chunk after the
 * last it took, when a push shows a gap, when its caller has fallen behind (the reader then goes at
 * its pace), after the subscriber reconnected (pushes may have been missed), when a push cannot be
 * read, or when it has heard nothing for PUSH_IDLE_MS (a push refused by an ACL, an end pushed by
 * no one, or a long wait for the first chunk). A stream the reader holds comes back to pushes with
 * the first push that follows on from what the reader delivered (its caller keeping up). One timer
 * for every stream, running only while some are fed here.
 */
export class StreamPushes {
  readonly #live = new Map<string, Live>()
  readonly #read = new Map<string, Read>()
  readonly #reader: () => StreamReader
  readonly #logger: Logger
  #timer: NodeJS.Timeout | undefined

  constructor(reader: () => StreamReader, logger: Logger) {
    this.#reader = reader
    this.#logger = logger
  }

  /** Streams fed by pushes now. */
  get size(): number {
    return this.#live.size
  }

  /** Feeds `output` (job `jobId`'s stream, from its first chunk) with the pushes it gets. */
  add(jobId: string, output: OutputSink): void {
    this.#live.set(jobId, { output, next: 1, heardAt: performance.now() })
    this.#timer ??= setInterval(() => this.#checkIdle(), IDLE_CHECK_MS).unref()
  }

  /** Stops feeding `output` (its stream ended here), by pushes or through the reader. */
  remove(jobId: string, output: OutputSink): void {
    if (this.#live.get(jobId)?.output === output) this.#live.delete(jobId)
    if (this.#live.size === 0) this.#stopTimer()
    const read = this.#read.get(jobId)
    if (read?.output === output) {
      this.#read.delete(jobId)
      this.#reader().remove(read.wrapper)
    }
  }

  /** Hands every stream to the reader: pushes may have been missed (the subscriber reconnected). */
  handOverAll(why: string): void {
    if (this.#live.size === 0) return
    this.#logger.debug({ streams: this.#live.size, why }, 'reading streams from Redis')
    for (const jobId of [...this.#live.keys()]) this.#handOver(jobId)
  }

  close(): void {
    this.#live.clear()
    this.#read.clear()
    this.#stopTimer()
  }

  /** A message of pushes, as the results channel brought it. */
  onMessage(message: Buffer): void {
    const records = parsePushes(message)
    if (records === undefined) {
      this.handOverAll('a message of pushes that cannot be read')
      return
    }
    const now = performance.now()
    for (const r of records) {
      const live = this.#live.get(r.jobId) ?? this.#takeBack(r, now)
      if (live === undefined) continue
      live.heardAt = now
      const data = message.toString('utf8', r.dataStart, r.dataEnd)
      if (r.isEnd) {
        // Every chunk before the end entry must have come: otherwise the reader brings the rest.
        if (r.first !== live.next) this.#handOver(r.jobId)
        else {
          this.#live.delete(r.jobId)
          if (this.#live.size === 0) this.#stopTimer()
          live.output.onEnd(data)
        }
        continue
      }
      const last = r.first + r.count - 1
      if (last < live.next) continue
      if (r.first > live.next || !live.output.wantsMore()) {
        this.#handOver(r.jobId)
        continue
      }
      let values: unknown[]
      try {
        const parsed: unknown = JSON.parse(data)
        values = r.count === 1 ? [parsed] : (parsed as unknown[])
      } catch {
        values = []
      }
      if (!Array.isArray(values) || values.length !== r.count) {
        // The reader reads the same entry from the stream, and says what is wrong with it.
        this.#handOver(r.jobId)
        continue
      }
      while (live.next <= last && this.#live.get(r.jobId) === live) {
        const seq = live.next++
        live.output.onChunk(seq, values[seq - r.first], seq === 1 ? r.owner : undefined)
      }
    }
  }

  #handOver(jobId: string): void {
    const live = this.#live.get(jobId)
    if (live === undefined) return
    this.#live.delete(jobId)
    if (this.#live.size === 0) this.#stopTimer()
    const { output } = live
    const read: Read = { output, wrapper: output, delivered: live.next - 1 }
    const done = () => {
      if (this.#read.get(jobId) === read) this.#read.delete(jobId)
    }
    read.wrapper = {
      key: output.key,
      wantsMore: () => output.wantsMore(),
      onChunk(seq, value, owner) {
        read.delivered = seq
        output.onChunk(seq, value, owner)
      },
      onEnd(envelope) {
        done()
        output.onEnd(envelope)
      },
      onMalformed(reason) {
        done()
        output.onMalformed(reason)
      },
    }
    this.#read.set(jobId, read)
    this.#reader().add(read.wrapper, `0-${read.delivered}`)
  }

  /**
   * A stream the reader holds, back to pushes when `r` follows on from what it delivered (a later
   * reply of the reader for it is then dropped: the reader no longer holds it).
   */
  #takeBack(r: PushRecord, now: number): Live | undefined {
    const read = this.#read.get(r.jobId)
    if (read === undefined) return undefined
    const next = read.delivered + 1
    const follows = r.isEnd ? r.first === next : r.first <= next && next <= r.first + r.count - 1
    if (!follows || !read.output.wantsMore()) return undefined
    this.#read.delete(r.jobId)
    this.#reader().remove(read.wrapper)
    const live: Live = { output: read.output, next, heardAt: now }
    this.#live.set(r.jobId, live)
    this.#timer ??= setInterval(() => this.#checkIdle(), IDLE_CHECK_MS).unref()
    return live
  }

  #checkIdle(): void {
    const before = performance.now() - PUSH_IDLE_MS
    for (const [jobId, live] of this.#live) if (live.heardAt < before) this.#handOver(jobId)
  }

  #stopTimer(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
  }
}

/**
 * The records of a message of pushes, or undefined when it is not of the layout lib/out.lua
 * writes: '~', then records joined by line breaks, each a header line
 * '<jobId> <first|end> <count|seq> <worker|-> <entry id|-> <bytes>' and <bytes> bytes of data.
 */
export function parsePushes(message: Buffer): PushRecord[] | undefined {
  if (message[0] !== PUSH_MARK || message[1] !== NEWLINE) return undefined
  const records: PushRecord[] = []
  let pos = 2
  while (pos < message.length) {
    const nl = message.indexOf(NEWLINE, pos)
    if (nl < 0) return undefined
    const words = message.toString('latin1', pos, nl).split(' ')
    if (words.length !== 6) return undefined
    const [jobId, a, b, w, e, size] = words as [string, string, string, string, string, string]
    const bytes = wholeNumber(size)
    if (jobId === '' || bytes === undefined || nl + 1 + bytes > message.length) return undefined
    const dataStart = nl + 1
    const dataEnd = nl + 1 + bytes
    pos = dataEnd
    if (pos < message.length) {
      if (message[pos] !== NEWLINE) return undefined
      pos++
    }
    if (a === 'end') {
      const seq = wholeNumber(b)
      if (seq === undefined || seq < 1) return undefined
      records.push({ jobId, first: seq, isEnd: true, count: 0, owner: undefined, dataStart, dataEnd })
      continue
    }
    const first = wholeNumber(a)
    const count = wholeNumber(b)
    if (first === undefined || count === undefined || first < 1 || count < 1) return undefined
    const owner = w !== '-' && e !== '-' ? { workerId: w, entryId: e } : undefined
    records.push({ jobId, first, isEnd: false, count, owner, dataStart, dataEnd })
  }
  return records
}

/** A whole number in decimal digits (at most 15), or undefined. */
function wholeNumber(s: string): number | undefined {
  if (s.length === 0 || s.length > 15) return undefined
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 48 || c > 57) return undefined
  }
  return Number(s)
}
