/**
 * `hedgeyard/internal`: the wire protocol's building blocks, for the project's own benchmarks and
 * tests that call scripts directly. Not a stable API: it changes with the protocol.
 */
export { activeTracer } from './observe/tracing.js'
export { PUSH_IDLE_MS } from './producer/stream-pushes.js'
export {
  decodeEntry,
  type EntryFields,
  entryFieldList,
  entryFields,
  type InvalidEntry,
  type JobEntry,
} from './protocol/codec.js'
export {
  affinityKey,
  CONSUMER_GROUP,
  cancelChannel,
  claimKey,
  classLimitsKey,
  copiesKey,
  copyResultKey,
  inflightKey,
  outKey,
  producerKey,
  queueKey,
  resultChannel,
  resultKey,
  sentKey,
  tenantQuotaKey,
  workerKey,
} from './protocol/keys.js'
export { LUA_SCRIPTS } from './protocol/lua/scripts.generated.js'
export { callScript, type ScriptSpec } from './protocol/scripts/call.js'
export { appendChunks, type ChunkItem } from './protocol/scripts/chunk.js'
export { type Completion, completeJobs } from './protocol/scripts/complete.js'
export {
  DISPATCH,
  type DispatchCallSettings,
  type DispatchItem,
  dispatchArgs,
  parseDispatchReply,
} from './protocol/scripts/dispatch.js'
export { registerWorkers, type WorkerRegistration } from './protocol/scripts/register.js'
export { type Connection, connectReady, createConnection } from './redis/connection.js'
