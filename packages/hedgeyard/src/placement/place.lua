--[[
  placement/place.lua: queueing a job on the least utilised worker with room (its session's worker when
  bound), shared by dispatch and retry-dead. Needs lib/wire.lua, lib/check.lua, lib/keys.lua,
  lib/entry.lua and placement/pool.lua, and `producer`, `resultTtl` ('' or ms), `affinityTtl` and `now`
  defined by the including script.
]]

-- An entry's times go in as text, made once per call (the deadline once per timeout): a number
-- passed to redis.call is turned into text on every call (Redis 7.0: snprintf '%.17g').
local nowText = string.format('%d', now)
local deadlines = {}
local function deadlineText(timeoutMs)
  local text = deadlines[timeoutMs]
  if text == nil then
    text = string.format('%d', now + timeoutMs)
    deadlines[timeoutMs] = text
  end
  return text
end

-- Workers whose stream refused an entry during this call: out of the candidates from then on.
-- Workers checked during this call: true when their stream takes entries, false when it holds
-- another type (such a worker leaves the candidates: its jobs go to others).
local streamOk = {}
local function isBroken(w)
  local ok = streamOk[w]
  if ok == nil then
    local kind = redis.call('TYPE', queueKeyOf(w))['ok']
    ok = kind == 'stream' or kind == 'none'
    streamOk[w] = ok
  end
  return not ok
end

-- Queues one copy on target's stream, the first write for that copy; then records the copy of a
-- racing job. Returns the entry id, or nil when the stream holds another type (the worker is then
-- taken out of the candidates, and nothing was written for the copy). The stream's type is read
-- once per worker per call, before its first entry; the user's right to XADD was checked first.
-- `tenant` (nil for none) is the job's limitKey, written in the entry; `trace` ('' or nil for
-- none) the copy's traceparent.
local function addEntry(target, jobId, session, payload, timeoutMs, attempt, maxAttempts, race, copiesKey, tenant, trace)
  if isBroken(target) then
    redis.call('ZREM', readyKey, target)
    return nil
  end
  local entryId = writeEntry(queueKeyOf(target), jobId, payload, producer, deadlineText(timeoutMs),
    nowText, session, attempt, attempt, maxAttempts, race, resultTtl, tenant, trace)
  if copiesKey then
    redis.call('HSET', copiesKey, target, entryId)
    redis.call('PEXPIRE', copiesKey, timeoutMs + 60000)
  end
  return entryId
end

-- Places one job (and its copies); returns the first copy's worker, or 'SATURATED' or
-- 'NO_WORKERS', then 1 for an affinity hit, else 0.
local function dispatchOne(jobId, session, payload, timeoutMs, attempt, maxAttempts, excluded, race, copies, affKey, copiesKey, tenant, trace)
  local bound = nil
  if affKey then
    bound = redis.call('GET', affKey)
    if not (bound and not isBroken(bound) and not (excluded and excluded[bound])
        and redis.call('ZSCORE', readyKey, bound) and isAlive(bound)) then
      bound = nil
    end
  end
  -- Copies go to distinct workers in the same step (2 for tied); a copy that finds no room is not
  -- queued. A worker whose stream refuses the entry is skipped for the next candidate.
  local chosen, queued, avoid, nextTarget = nil, 0, excluded, bound
  while queued < copies do
    local target = nextTarget or pick(avoid)
    nextTarget = nil
    if target == nil then break end
    if addEntry(target, jobId, session, payload, timeoutMs, attempt, maxAttempts, race, copiesKey, tenant, trace) then
      reserve(target)
      queued = queued + 1
      chosen = chosen or target
    end
    avoid = avoid or {}
    avoid[target] = true
  end
  if chosen == nil then return noWorkerStatus(), 0 end
  local hit = (bound ~= nil and chosen == bound) and 1 or 0
  -- Only the first copy binds or refreshes the session: a hedge or retry copy goes elsewhere on
  -- purpose and must not move the session away from the worker it is bound to.
  if affKey and attempt == '1' then
    if hit == 1 then
      redis.call('PEXPIRE', affKey, affinityTtl)
    else
      redis.call('SET', affKey, chosen, 'PX', affinityTtl)
    end
  end
  return chosen, hit
end

