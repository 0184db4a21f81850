export { hedge } from './hedge.js'
export { RACE_DEFAULTS, type RaceOptions } from './options.js'
export { type RaceContext, type RaceOutcome, type RaceTask, race } from './race.js'
