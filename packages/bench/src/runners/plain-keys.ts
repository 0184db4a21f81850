/** Names shared by the plain-commands baseline's producer and worker. */

/** The channel the results of `stream` are published on: one message per job, `<n> <handler ms | null>`. */
export function plainResultChannel(stream: string): string {
  return `${stream}:results`
}
