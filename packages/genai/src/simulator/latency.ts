import type { FakeGeminiBehaviour } from './options.js'

/**
 * Time to the first token, in ms: lognormal with median `medianMs` and sigma `sigma` (the
 * normal deviate by Box-Muller), plus `stallMs` for a share `stallRate` of the requests.
 */
export function sampleFirstTokenMs(
  behaviour: Pick<FakeGeminiBehaviour, 'medianMs' | 'sigma' | 'stallRate' | 'stallMs'>,
  random: () => number = Math.random,
): number {
  let ms = behaviour.medianMs
  if (behaviour.sigma > 0) {
    const u = 1 - random() // (0, 1]: the logarithm stays finite
    const normal = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random())
    ms *= Math.exp(behaviour.sigma * normal)
  }
  if (behaviour.stallRate > 0 && random() < behaviour.stallRate) ms += behaviour.stallMs
  return Math.min(ms, 2_147_483_647)
}
