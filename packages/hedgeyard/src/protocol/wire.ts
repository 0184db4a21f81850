/**
 * The constants of the wire protocol that both sides must agree on: the TypeScript code imports
 * them, and `scripts/build-lua.mjs` copies them into the Lua scripts (as `lib/wire.lua`), so a
 * script and the decoder can never disagree on a default, a limit or a key's shape.
 *
 * Each constant is one line `export const NAME = <string or integer literal>`: the build reads
 * this file as text and refuses anything else.
 */

/** The consumer group of every worker stream. */
export const CONSUMER_GROUP = 'hy'

/** The attempts a job may use when its entry has no `max` field (the Dispatcher's default too). */
export const DEFAULT_MAX_ATTEMPTS = 3

/** Most bytes (UTF-8) of a job id, producer id or worker id on the wire (they become parts of keys). */
export const MAX_ID_BYTES = 128

/** Most bytes (UTF-8) of a session on the wire: the producer's 256 characters take at most 768. */
export const MAX_SESSION_BYTES = 1024

/** Most digits of a number field of an entry (times in ms, counts): 2^53 has 16. */
export const MAX_NUMBER_DIGITS = 15

/**
 * Most attempts, copies or allowed attempts an entry may carry: a sanity bound far above what a
 * producer sends (maxAttempts up to 100, plus a copy's number).
 */
export const MAX_ATTEMPTS_LIMIT = 1000

/** The error name every envelope a script or worker makes for the protocol carries. */
export const ERROR_NAME = 'HedgeyardError'

/** Most chunks one streamed job may write: a sanity bound far above the worker's maxChunks default. */
export const MAX_CHUNKS_LIMIT = 1000000

/** Most units one job may cost against a pool's cost budget. */
export const MAX_JOB_COST = 1000000000

/**
 * Most ms a job's deadline may lie ahead (the longest a Node.js timer waits, about 24.9 days): a
 * tenant's job in flight whose deadline is further off than this was not written by a dispatch, and
 * holds no slot.
 */
export const MAX_TIMEOUT_MS = 2147483647

/** Most bytes of a limit class's name: letters, digits and `_ . -` (no `:`, which separates it from the tenant in a key). */
export const MAX_CLASS_BYTES = 64

/** The limit class of a tenant's job that names none. */
export const DEFAULT_LIMIT_CLASS = 'default'

/**
 * Slots of a producer's dispatch receipts (`sent:<producerId>`): a dispatch call writes its receipt
 * in slot `call number mod RECEIPT_SLOTS`. A producer has at most this many calls out at once, so
 * the receipt of a call whose reply was lost is still there when it looks.
 */
export const RECEIPT_SLOTS = 64

/** Key parts after the pool's base `<prefix>:{<pool>}:` (see keys.ts for what each holds). */
export const KEY_WORKER = 'w:'
export const KEY_QUEUE = 'q:'
export const KEY_AFFINITY = 'aff:'
export const KEY_RESULT = 'res:'
export const KEY_COPIES = 'copies:'
export const KEY_CLAIM = 'claim:'
export const KEY_PRODUCER = 'p:'
export const KEY_OUT = 'out:'
export const KEY_RESUMED = 'resumed:'
export const KEY_LIMITS = 'limits'
export const KEY_QUOTA = 'quota'
export const KEY_CLASS_LIMITS = 'limits:'
export const KEY_TENANT_QUOTA = 'quota:'
export const KEY_INFLIGHT = 'inflight:'
export const KEY_SENT = 'sent:'
export const CHANNEL_RESULTS = 'results:'
export const CHANNEL_CANCEL = 'cancel:'
