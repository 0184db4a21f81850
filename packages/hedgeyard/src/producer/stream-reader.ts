import type { Logger } from 'pino'
import {
  type Connection,
  connectReady,
  createConnection,
  type RedisInput,
  unblockClient,
} from '../redis/connection.js'

/** What a reader delivers one output stream's entries to. */
export interface OutputSink {
  /** The output stream's key. */
  readonly key: string
  /** Whether the sink wants entries now (a reader that fell behind pauses its stream). */
  wantsMore(): boolean
  /** A chunk, parsed: `seq` its number from 1; the stream's first also names its owner. */
  onChunk(seq: number, value: unknown, owner: { workerId: string; entryId: string } | undefined): void
  /** The end entry: the job's result envelope. */
  onEnd(envelope: string): void
  /** An entry that is not a chunk or an end (written by someone else). */
  onMalformed(reason: string): void
}

type XReadReply = [string, [string, string[] | null][]][] | null

/** Entries one read brings at most per stream. */
const READ_COUNT = 256

/**
 * Reads the output streams one producer reads from Redis (those it resumes, and its own streams
 * that pushes failed: stream-pushes.ts) on one blocking connection: one `XREAD` over all their
 * keys, each from the last id it delivered, so a reconnect resumes without gaps or duplicates. A new stream wakes a blocked read with `CLIENT UNBLOCK` (sent by the command
 * connection), repeated until the read returns, since the wake may reach Redis before the read.
 */
export class StreamReader {
  readonly #redis: RedisInput
  readonly #cmd: Connection
  readonly #name: string
  readonly #slotKey: string
  readonly #blockMs: number
  readonly #logger: Logger
  /** The sinks of each stream key (a job can be followed twice in one process), each with its position. */
  readonly #sinks = new Map<string, { sink: OutputSink; lastId: string }[]>()
  #conn: Connection | undefined
  #clientId: number | undefined
  #isClosed = false
  #isReading = false
  #isKicked = false
  #idleWaiter: (() => void) | undefined
  #loop: Promise<void> | undefined

  /** `slotKey`: a key of the pool's slot (its streams' node, on a cluster). */
  constructor(
    redis: RedisInput,
    cmd: Connection,
    name: string,
    slotKey: string,
    blockMs: number,
    logger: Logger,
  ) {
    this.#redis = redis
    this.#cmd = cmd
    this.#name = name
    this.#slotKey = slotKey
    this.#blockMs = blockMs
    this.#logger = logger
  }

  /** Open streams. */
  get size(): number {
    let n = 0
    for (const list of this.#sinks.values()) n += list.length
    return n
  }

  /** Starts reading `sink`'s stream after `afterId` (`0-0` for all of it). */
  add(sink: OutputSink, afterId: string): void {
    const list = this.#sinks.get(sink.key)
    if (list === undefined) this.#sinks.set(sink.key, [{ sink, lastId: afterId }])
    else list.push({ sink, lastId: afterId })
    this.#loop ??= this.#run()
    this.kick()
  }

  remove(sink: OutputSink): void {
    const list = this.#sinks.get(sink.key)
    if (list === undefined) return
    const rest = list.filter((s) => s.sink !== sink)
    if (rest.length === 0) this.#sinks.delete(sink.key)
    else this.#sinks.set(sink.key, rest)
  }

  /** Makes the next read include what changed (a new stream, a reader that caught up). */
  kick(): void {
    this.#isKicked = true
    const idle = this.#idleWaiter
    this.#idleWaiter = undefined
    if (idle) {
      idle()
      return
    }
    if (this.#isReading) void this.#unblock()
  }

  async close(): Promise<void> {
    this.#isClosed = true
    this.kick()
    this.#conn?.disconnect()
    await this.#loop
  }

  async #unblock(): Promise<void> {
    // The wake may reach Redis before the read it is meant for: repeat while that read is out.
    for (let i = 0; i < 500 && this.#isReading && this.#isKicked && !this.#isClosed; i++) {
      if (this.#clientId !== undefined && this.#conn !== undefined) {
        const done = await unblockClient(this.#cmd, this.#conn, this.#clientId).catch(() => false)
        if (done) return
      }
      await new Promise((r) => setTimeout(r, 2))
    }
  }

  #connect(): Connection {
    const conn = createConnection(this.#redis, 'blocking', this.#name, this.#slotKey)
    conn.on('ready', () => {
      conn.client('ID').then(
        (id) => {
          this.#clientId = Number(id)
        },
        () => {},
      )
    })
    return conn
  }

  async #run(): Promise<void> {
    let failures = 0
    while (!this.#isClosed) {
      // One position per key: the earliest of its sinks that want more.
      const open: { key: string; from: string }[] = []
      for (const [key, list] of this.#sinks) {
        let from: string | undefined
        for (const s of list)
          if (s.sink.wantsMore() && (from === undefined || idBefore(s.lastId, from))) from = s.lastId
        if (from !== undefined) open.push({ key, from })
      }
      this.#isKicked = false
      if (open.length === 0) {
        await new Promise<void>((resolve) => {
          this.#idleWaiter = resolve
        })
        continue
      }
      try {
        this.#conn ??= this.#connect()
        await connectReady(this.#conn, 5_000)
        if (this.#clientId === undefined) this.#clientId = Number(await this.#conn.client('ID'))
        const args: (string | number)[] = ['COUNT', READ_COUNT, 'BLOCK', this.#blockMs, 'STREAMS']
        for (const s of open) args.push(s.key)
        for (const s of open) args.push(s.from)
        this.#isReading = true
        // A kick that came while the arguments were made is answered by the unblock loop.
        if (this.#isKicked) void this.#unblock()
        const reply = (await this.#conn.call('XREAD', ...args)) as XReadReply
        this.#isReading = false
        failures = 0
        this.#deliver(reply)
      } catch (err) {
        this.#isReading = false
        if (this.#isClosed) break
        failures++
        if (failures === 1 || failures % 20 === 0) {
          this.#logger.warn({ err, failures }, 'reading job streams failed; retrying')
        }
        await new Promise((r) => setTimeout(r, Math.min(50 * failures, 1_000)))
      }
    }
  }

  #deliver(reply: XReadReply): void {
    for (const [key, entries] of reply ?? []) {
      for (const [id, fields] of entries) {
        const list = this.#sinks.get(key)
        if (list === undefined) break
        for (const open of [...list]) {
          if (!idBefore(open.lastId, id) || !open.sink.wantsMore()) continue
          const after = seqOf(open.lastId)
          open.lastId = id
          if (fields === null) continue
          const problem = this.#deliverOne(open.sink, id, fields, after)
          if (problem !== undefined) {
            this.remove(open.sink)
            open.sink.onMalformed(problem)
          }
        }
      }
    }
  }

  /** Delivers one entry; returns why it is malformed, if it is. */
  /**
   * Delivers one entry: its chunks after seq `after` (an entry holds a write's chunks, and a resume
   * may start in the middle of one), or the end. Returns why it is malformed, if it is.
   */
  #deliverOne(sink: OutputSink, id: string, fields: string[], after: number): string | undefined {
    let data: string | undefined
    let batch: string | undefined
    let end: string | undefined
    let workerId: string | undefined
    let entryId: string | undefined
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const name = fields[i]
      const value = fields[i + 1] as string
      if (name === 'd') data = value
      else if (name === 'b') batch = value
      else if (name === 'end') end = value
      else if (name === 'w') workerId = value
      else if (name === 'e') entryId = value
    }
    if (end !== undefined) {
      this.remove(sink)
      sink.onEnd(end)
      return undefined
    }
    const match = /^0-(\d{1,15})$/.exec(id)
    if (match === null || (data === undefined && batch === undefined)) {
      return `entry ${id} of ${sink.key} is neither a chunk nor an end`
    }
    const last = Number(match[1])
    let values: unknown[]
    try {
      values = batch === undefined ? [JSON.parse(data as string)] : (JSON.parse(batch) as unknown[])
    } catch {
      return `entry ${id} of ${sink.key} is not JSON`
    }
    if (!Array.isArray(values) || values.length === 0 || values.length > last) {
      return `entry ${id} of ${sink.key} does not hold its chunks`
    }
    const first = last - values.length + 1
    const owner = workerId !== undefined && entryId !== undefined ? { workerId, entryId } : undefined
    for (let i = 0; i < values.length; i++) {
      if (first + i > after) sink.onChunk(first + i, values[i], first + i === 1 ? owner : undefined)
    }
    return undefined
  }
}

/** The seq an output stream id `0-<seq>` names (0 for anything else). */
function seqOf(id: string): number {
  return id.startsWith('0-') ? Number(id.slice(2)) || 0 : 0
}

/** Whether stream id `a` comes before `b` (ids `<ms>-<seq>`, compared as numbers). */
function idBefore(a: string, b: string): boolean {
  const [am = '0', as = '0'] = a.split('-')
  const [bm = '0', bs = '0'] = b.split('-')
  if (am.length !== bm.length) return am.length < bm.length
  if (am !== bm) return am < bm
  if (as.length !== bs.length) return as.length < bs.length
  return as < bs
}
