import type { RaceOptions } from './options.js'
import { type RaceTask, race } from './race.js'

/**
 * Runs a staggered {@link race} and resolves with the first success, aborting the other attempts.
 * @throws AggregateError of every failure, in attempt order, when all attempts fail (none when
 * `args` is empty); the reason of `opts.signal` when it aborts; TypeError or RangeError for an
 * invalid option (as a rejection).
 */
export async function hedge<A, T>(args: Iterable<A>, task: RaceTask<A, T>, opts: RaceOptions): Promise<T> {
  const errors: unknown[] = []
  // Leaving the loop with `return` closes the race, which aborts the attempts still running.
  for await (const outcome of race(args, task, opts)) {
    if (outcome.ok) return outcome.value
    errors[outcome.index] = outcome.error
  }
  const message =
    errors.length === 0
      ? 'no attempt was made: args is empty'
      : errors.length === 1
        ? 'the only attempt failed'
        : `all ${errors.length} attempts failed`
  throw new AggregateError(errors, message)
}
