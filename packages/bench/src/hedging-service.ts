/**
 * The service time of the hedging benchmark's workers: lognormal, and with a small probability
 * (independently per call) many times slower, as issue #3 item 9 asks. `isCorrelated` makes the
 * slowness a property of the request instead (every copy of a slow request is slow), to show
 * when hedging cannot help.
 */
import { seededRandom } from './stats.js'

/** Shape of the service-time distribution. */
export interface ServiceTime {
  /** Median of the lognormal part (ms). */
  medianMs: number
  /** Standard deviation of the lognormal's log. */
  sigma: number
  /** Share of calls that are slow (0..1), drawn independently per call. */
  slowShare: number
  /** When true, slowness is drawn once per request: all its copies are slow, or none is. */
  isCorrelated: boolean
  /** A slow call takes its lognormal time multiplied by a uniform factor in [slowMin, slowMax). */
  slowMin: number
  slowMax: number
}

/** What the benchmark runs with; `--median-ms` and `--sigma` change the first two. */
export const SERVICE_TIME_DEFAULTS: Readonly<ServiceTime> = Object.freeze({
  medianMs: 20,
  sigma: 0.3,
  slowShare: 0.02,
  isCorrelated: false,
  slowMin: 10,
  slowMax: 30,
})

/** The murmur3 finaliser: spreads every input bit over the whole 32-bit word. */
function mix32(h: number): number {
  let x = h >>> 0
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

/**
 * The service time of one call (ms), a pure function of (seed, request index, attempt): every
 * call draws its own numbers, so slowness is independent per call (a hedge copy, attempt 2, has
 * a fresh draw), yet the same request of the same seed takes the same time in every row of the
 * table (common random numbers: rows differ by what hedging did, not by luck of the draw).
 */
export function serviceTimeMs(dist: ServiceTime, seed: number, index: number, attempt: number): number {
  const random = seededRandom(mix32(mix32(mix32(seed) ^ index) ^ Math.imul(attempt, 0x9e3779b1)))
  // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
  const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random())
  const base = dist.medianMs * Math.exp(dist.sigma * z)
  let isSlow = random() < dist.slowShare
  let factor = dist.slowMin + random() * (dist.slowMax - dist.slowMin)
  if (dist.isCorrelated) {
    const perRequest = seededRandom(mix32(mix32(mix32(seed) ^ index) ^ 0x51ed270b))
    isSlow = perRequest() < dist.slowShare
    factor = dist.slowMin + perRequest() * (dist.slowMax - dist.slowMin)
  }
  return isSlow ? base * factor : base
}

/** Mean of the distribution, for comparison with the measured one (the benchmark uses the measured one). */
export function nominalMeanMs(dist: ServiceTime): number {
  const lognormalMean = dist.medianMs * Math.exp((dist.sigma * dist.sigma) / 2)
  const slowFactor = (dist.slowMin + dist.slowMax) / 2
  return lognormalMean * (1 - dist.slowShare + dist.slowShare * slowFactor)
}
