--[[
  placement/pool.lua: worker choice and reservation, shared by the scripts that place jobs
  (dispatch, rescue, retry-dead). Included at build time where a script says
  `--!include ../../placement/pool.lua`, after lib/wire.lua and lib/keys.lua; the including script defines `loadKey`, `readyKey`, `aliveKey`,
  `base` and `now` (ms, Redis time) first. A worker's score in `ready` is its utilisation
  (placement/ready.lua): the lowest is a free slot, then the least queued work per slot.
]]
--!include ready.lua

-- Leases and worker hashes do not change during one call: each is read once per worker per call.
local aliveCache, infoCache = {}, {}

-- Whether every lease in `alive` still runs: nil until asked, then read once per call. Every
-- member of `ready` has a lease in `alive` (register and heartbeat write the lease with it; the
-- other scripts put back in `ready` only a worker that is there or whose hash exists, and rescue
-- and deregister remove the hash, the lease and the `ready` entry together). So when the
-- earliest lease still runs, every candidate is alive and no lease is read worker by worker: a
-- batch that reaches 64 workers reads one lease instead of 64.
local allLeasesRun = nil

local function leasesAllRun()
  if allLeasesRun == nil then
    local first = redis.call('ZRANGE', aliveKey, 0, 0, 'WITHSCORES')
    allLeasesRun = first[2] ~= nil and tonumber(first[2]) >= now
  end
  return allLeasesRun
end

local function isAlive(w)
  if leasesAllRun() then return true end
  local alive = aliveCache[w]
  if alive == nil then
    local lease = redis.call('ZSCORE', aliveKey, w)
    alive = lease ~= false and tonumber(lease) >= now
    aliveCache[w] = alive
  end
  return alive
end

-- Reads the leases of many workers with one ZMSCORE, for isAlive to answer from its cache.
local function checkAlive(list)
  if leasesAllRun() then return end
  local unknown = {}
  for _, w in ipairs(list) do
    if aliveCache[w] == nil then unknown[#unknown + 1] = w end
  end
  if #unknown == 0 then return end
  local leases = redis.call('ZMSCORE', aliveKey, unpack(unknown))
  for i, w in ipairs(unknown) do
    local lease = leases[i]
    aliveCache[w] = lease ~= false and tonumber(lease) >= now
  end
end

local function excludedSet(list)
  if list == nil or list == '' then return nil end
  local set = {}
  for id in string.gmatch(list, '[^,]+') do set[id] = true end
  return set
end

-- Least utilised candidate: the lowest score of `ready`, a random one among equal scores. Ranks
-- make this O(log N). A candidate whose lease expired is dropped from `ready` (its heartbeat
-- puts it back), so each dead worker costs one extra step once, not on every dispatch.
local function pickAny()
  while true do
    local first = redis.call('ZRANGE', readyKey, 0, 0, 'WITHSCORES')
    if #first == 0 then return nil end
    local w = first[1]
    local ties = redis.call('ZCOUNT', readyKey, first[2], first[2])
    if ties > 1 then
      local r = math.random(0, ties - 1)
      w = redis.call('ZRANGE', readyKey, r, r)[1]
    end
    if isAlive(w) then return w end
    redis.call('ZREM', readyKey, w)
  end
end

-- What placement reads of a worker's hash, once per call: `capacity`, its room (queue +
-- concurrency; at most 1 with a half-open breaker, 0 with an open one, false when the hash has
-- none, is not a hash, or its capacity is not a number: such a worker takes one job and leaves
-- the candidates), `concurrency` (placement/ready.lua) and `host` (false when it has none).
local function infoOf(w)
  local info = infoCache[w]
  if info == nil then
    local ok, fields = pcall(redis.call, 'HMGET', workerKeyOf(w), 'capacity', 'breaker', 'concurrency', 'host')
    if not ok then fields = { false, false, false, false } end
    local capacity = tonumber(fields[1]) or false
    -- A half-open breaker lets one probe job in; an open one none (complete.lua, heartbeat.lua).
    if capacity and fields[2] == 'half' then capacity = math.min(capacity, 1) end
    if capacity and fields[2] == 'open' then capacity = 0 end
    local host = fields[4]
    if type(host) ~= 'string' or host == '' then host = false end
    info = { capacity = capacity, concurrency = concurrencyOf(fields[3]), host = host }
    infoCache[w] = info
  end
  return info
end

-- The process a worker belongs to: its id without the `-<n>` a worker group adds (`<idPrefix>-<n>`).
local function processOf(w)
  return string.match(w, '^(.*)%-%d+$') or w
end

-- With exclusions (hedge and retry copies, a rescued worker), look at a window as wide as the
-- exclusions plus a margin: the exclusions are few, so this stays O(log N). A copy on an excluded
-- worker's sibling shares its process's trouble, and one on the same host its machine's, so the
-- window's candidates rank in three tiers: on another host than every excluded worker's (when
-- their hosts are known), then in another process, then a sibling. The least utilised of the best
-- tier wins, at random among ties; the window is read in order of score, so the scan stops at
-- the first score above the best of the first tier.
local function pickExcluding(excluded)
  local count = 0
  local excludedProcesses, excludedHosts, hasHosts = {}, {}, false
  for w in pairs(excluded) do
    count = count + 1
    excludedProcesses[processOf(w)] = true
    local host = infoOf(w).host
    if host then
      excludedHosts[host] = true
      hasHosts = true
    end
  end
  local window = redis.call('ZRANGE', readyKey, 0, count + 15, 'WITHSCORES')
  local best, bestScore, ties = {}, {}, { 0, 0, 0 }
  for i = 1, #window, 2 do
    local w, score = window[i], tonumber(window[i + 1])
    if bestScore[1] ~= nil and score > bestScore[1] then break end
    if not excluded[w] then
      if not isAlive(w) then
        redis.call('ZREM', readyKey, w)
      else
        local k = 2
        if excludedProcesses[processOf(w)] then
          k = 3
        elseif hasHosts then
          local host = infoOf(w).host
          if host and not excludedHosts[host] then k = 1 end
        end
        if bestScore[k] == nil or score < bestScore[k] then
          best[k], bestScore[k], ties[k] = w, score, 1
        elseif score == bestScore[k] then
          ties[k] = ties[k] + 1
          if math.random(1, ties[k]) == 1 then best[k] = w end
        end
      end
    end
  end
  return best[1] or best[2] or best[3]
end

-- The least utilised live, active worker with room that is not excluded, or nil.
local function pick(excluded)
  if excluded then return pickExcluding(excluded) end
  return pickAny()
end

-- Why nothing could be picked: 'SATURATED' when some worker is alive, else 'NO_WORKERS'.
local function noWorkerStatus()
  if redis.call('ZCOUNT', aliveKey, now, '+inf') > 0 then return 'SATURATED' end
  return 'NO_WORKERS'
end

-- Whether w has no room left at `load` (a worker without a capacity takes no more than one).
local function isFull(w, load)
  local capacity = infoOf(w).capacity
  return capacity == false or load >= capacity
end

-- Reserves a slot of w (+1 load); a worker that reaches its capacity stops being a candidate,
-- any other gets its new utilisation in `ready`.
local function reserve(w)
  local load = tonumber(redis.call('ZINCRBY', loadKey, 1, w))
  if isFull(w, load) then
    redis.call('ZREM', readyKey, w)
  else
    redis.call('ZADD', readyKey, readyScore(load, infoOf(w).concurrency), w)
  end
end
