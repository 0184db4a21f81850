/** Names and settings shared by the producer and worker of the plain-commands baselines. */

/**
 * How a plain-commands job travels to its worker: 'stream', a minimal streams job (`XADD`, then
 * `XREADGROUP`, `XACK`, `XDEL`); 'pubsub', a bare round trip (the job's number is published to a
 * channel the worker listens on, nothing is stored: the least any job through Redis can cost).
 */
export type PlainTransport = 'stream' | 'pubsub'

/** The channel the results of `stream` are published on: one message per job, `<n> <handler ms | null>`. */
export function plainResultChannel(stream: string): string {
  return `${stream}:results`
}

/** The channel the jobs of `stream` are published on in the 'pubsub' transport: `<n>`. */
export function plainJobChannel(stream: string): string {
  return `${stream}:jobs`
}
