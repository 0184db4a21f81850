--[[
  lib/keys.lua: the keys a script learns inside itself (a chosen worker's stream, the result of a
  job read from an entry), built from the pool's base and the key parts of lib/wire.lua, as
  protocol/keys.ts builds them. The including script defines `base` ('hy:{P}:') first, so every
  key keeps the pool's {P} tag and its cluster slot.
]]
local function workerKeyOf(w) return base .. KEY_WORKER .. w end
local function queueKeyOf(w) return base .. KEY_QUEUE .. w end
local function affinityKeyOf(session) return base .. KEY_AFFINITY .. session end
local function resultKeyOf(jobId) return base .. KEY_RESULT .. jobId end
local function copyResultKeyOf(jobId, copy) return base .. KEY_RESULT .. jobId .. ':' .. copy end
local function copiesKeyOf(jobId) return base .. KEY_COPIES .. jobId end
local function resultChannelOf(producer) return base .. CHANNEL_RESULTS .. producer end
local function outKeyOf(jobId) return base .. KEY_OUT .. jobId end
local function cancelChannelOf(w) return base .. CHANNEL_CANCEL .. w end
local function classLimitsKeyOf(class) return base .. KEY_CLASS_LIMITS .. class end
local function tenantQuotaKeyOf(class, tenant) return base .. KEY_TENANT_QUOTA .. class .. ':' .. tenant end
local function inflightKeyOf(tenant) return base .. KEY_INFLIGHT .. tenant end
local function sentKeyOf(producer) return base .. KEY_SENT .. producer end
