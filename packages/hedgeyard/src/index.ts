export { cancelJob } from './admin/cancel-job.js'
export type { DeadLetter } from './admin/dead-letters.js'
export { listDeadLetters, purgeDeadLetters, retryDeadLetters } from './admin/dead-letters.js'
export { drainWorkers } from './admin/drain-workers.js'
export { getJob } from './admin/get-job.js'
export type { PoolRef, ProducerStats } from './admin/inspect-pool.js'
export { inspectPool, inspectProducers } from './admin/inspect-pool.js'
export type { Limiter, PoolLimits, PoolLimitsOptions } from './admin/pool-limits.js'
export { clearPoolLimits, getPoolLimits, setPoolLimits } from './admin/pool-limits.js'
export type { Handler, JobContext } from './consumer/run-job.js'
export type { BreakerOptions, WorkerGroup, WorkerOptions } from './consumer/start-workers.js'
export { startWorkers, WORKER_DEFAULTS } from './consumer/start-workers.js'
export type {
  DispatcherOptions,
  DispatcherStats,
  HedgingOptions,
  ResumeOptions,
} from './producer/dispatcher.js'
export { DISPATCHER_DEFAULTS, Dispatcher } from './producer/dispatcher.js'
export type { CancelOutcome } from './producer/end-job.js'
export type { JobState } from './producer/job-state.js'
export type { JobStream, StreamChunk } from './producer/job-stream.js'
export type { HedgeOptions, RetryOptions, SubmitOptions } from './producer/submit-options.js'
export type { WorkerMetrics } from './producer/worker-metrics.js'
export type { ErrorCode } from './protocol/errors.js'
export { ERROR_CODES, HedgeyardError, isHedgeyardError } from './protocol/errors.js'
export type { PoolKeys } from './protocol/keys.js'
export { poolKeys } from './protocol/keys.js'
