/** Where a table of {@link WaitingJobs} starts: room for 32 jobs before it grows. */
const INITIAL_SLOTS = 64
const FNV_OFFSET = 0x811c9dc5
const FNV_PRIME = 0x01000193
/**
 * An id is hashed by its last characters only: the ids of one producer differ in their last ones
 * (a job id ends with its counter), and a hash over all of them cost twice as much.
 */
const HASHED_CHARS = 16

/**
 * The jobs waiting for their result, by id: a hash table with open addressing that finds a job
 * from the bytes of its id in a results message, without making a string of them, and that
 * neither allocates nor leaves tombstones as jobs come and go (a deletion shifts the entries after
 * it back). A `Map` keyed by the id would take a string sliced from every message line, and
 * rebuild its table every few dozen jobs. Ids are wire ids (ASCII), so a character of an id and a
 * byte of a message compare alike.
 */
export class WaitingJobs<T> {
  #ids: (string | undefined)[] = new Array(INITIAL_SLOTS).fill(undefined)
  #values: (T | undefined)[] = new Array(INITIAL_SLOTS).fill(undefined)
  #hashes = new Int32Array(INITIAL_SLOTS)
  #size = 0

  /** Jobs held. */
  get size(): number {
    return this.#size
  }

  /** Every id held, in no order. */
  ids(): string[] {
    const ids: string[] = []
    for (const id of this.#ids) if (id !== undefined) ids.push(id)
    return ids
  }

  set(id: string, value: T): void {
    const hash = hashOf(id)
    const slot = this.#find(id, hash)
    if (slot >= 0) {
      this.#values[slot] = value
      return
    }
    if (2 * (this.#size + 1) > this.#ids.length) this.#grow()
    const mask = this.#ids.length - 1
    let i = hash & mask
    while (this.#ids[i] !== undefined) i = (i + 1) & mask
    this.#ids[i] = id
    this.#values[i] = value
    this.#hashes[i] = hash
    this.#size++
  }

  get(id: string): T | undefined {
    const slot = this.#find(id, hashOf(id))
    return slot < 0 ? undefined : this.#values[slot]
  }

  delete(id: string): void {
    const slot = this.#find(id, hashOf(id))
    if (slot >= 0) this.deleteAt(slot)
  }

  /** The slot of the id written in `bytes[start..end)`, or -1. */
  slotOfBytes(bytes: Uint8Array, start: number, end: number): number {
    let hash = FNV_OFFSET
    for (let i = Math.max(start, end - HASHED_CHARS); i < end; i++) {
      hash = Math.imul(hash ^ (bytes[i] as number), FNV_PRIME)
    }
    hash |= 0
    const mask = this.#ids.length - 1
    const length = end - start
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const id = this.#ids[i]
      if (id === undefined) return -1
      if (this.#hashes[i] === hash && id.length === length && sameBytes(id, bytes, start)) return i
    }
  }

  /** The id in a slot that {@link slotOfBytes} gave. */
  idAt(slot: number): string {
    return this.#ids[slot] as string
  }

  /** The value in a slot that {@link slotOfBytes} gave. */
  valueAt(slot: number): T {
    return this.#values[slot] as T
  }

  /** Removes the job in a slot, moving back the entries after it that it had pushed along. */
  deleteAt(slot: number): void {
    const ids = this.#ids
    const values = this.#values
    const hashes = this.#hashes
    const mask = ids.length - 1
    let hole = slot
    for (let i = (slot + 1) & mask; ids[i] !== undefined; i = (i + 1) & mask) {
      // An entry may fill the hole unless its home slot lies cyclically in (hole, i].
      const home = (hashes[i] as number) & mask
      const isHomeBetween = hole <= i ? hole < home && home <= i : hole < home || home <= i
      if (isHomeBetween) continue
      ids[hole] = ids[i]
      values[hole] = values[i]
      hashes[hole] = hashes[i] as number
      hole = i
    }
    ids[hole] = undefined
    values[hole] = undefined
    this.#size--
  }

  #find(id: string, hash: number): number {
    const mask = this.#ids.length - 1
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const held = this.#ids[i]
      if (held === undefined) return -1
      if (this.#hashes[i] === hash && held === id) return i
    }
  }

  #grow(): void {
    const ids = this.#ids
    const values = this.#values
    const slots = ids.length * 2
    this.#ids = new Array(slots).fill(undefined)
    this.#values = new Array(slots).fill(undefined)
    this.#hashes = new Int32Array(slots)
    this.#size = 0
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]
      if (id !== undefined) this.set(id, values[i] as T)
    }
  }
}

/** FNV-1a over the character codes of an id's last characters (its bytes: ids are ASCII). */
function hashOf(id: string): number {
  let hash = FNV_OFFSET
  for (let i = Math.max(0, id.length - HASHED_CHARS); i < id.length; i++) {
    hash = Math.imul(hash ^ id.charCodeAt(i), FNV_PRIME)
  }
  return hash | 0
}

function sameBytes(id: string, bytes: Uint8Array, start: number): boolean {
  for (let i = 0; i < id.length; i++) if (id.charCodeAt(i) !== bytes[start + i]) return false
  return true
}
