import type { ScriptSpec } from './call.js'
import { CANCEL } from './cancel.js'
import { CHUNK } from './chunk.js'
import { CLAIM } from './claim.js'
import { COMPLETE } from './complete.js'
import { CORRECT_COST } from './correct-cost.js'
import { DEREGISTER } from './deregister.js'
import { DISPATCH } from './dispatch.js'
import { DRAIN } from './drain.js'
import { HEARTBEAT } from './heartbeat.js'
import { REGISTER } from './register.js'
import { RESCUE } from './rescue.js'
import { RETRY_DEAD } from './retry-dead.js'

/** Every script's key layout, for the test that checks them against the script headers. */
export const SCRIPT_SPECS: readonly ScriptSpec[] = [
  CANCEL,
  CHUNK,
  CLAIM,
  COMPLETE,
  CORRECT_COST,
  DEREGISTER,
  DISPATCH,
  DRAIN,
  HEARTBEAT,
  REGISTER,
  RESCUE,
  RETRY_DEAD,
]
