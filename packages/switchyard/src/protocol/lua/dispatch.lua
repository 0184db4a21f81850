--[[
  dispatch: pick the least-loaded live worker with room for each job of a batch, reserve it and
  queue the job on its stream, all in one step.

  KEYS[1] -> sy:{P}:load    ZSET workerId -> load (queued + running)
  KEYS[2] -> sy:{P}:ready   ZSET workerId -> load, only active workers below capacity
  KEYS[3] -> sy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)

  ARGV[1] base 'sy:{P}:'; derived keys, same {P} tag:
            sy:{P}:w:<workerId>   HASH (capacity)
            sy:{P}:q:<workerId>   STREAM the job is added to
            sy:{P}:aff:<session>  STRING session -> workerId, PX affinity TTL
  ARGV[2] affinity TTL (ms)
  ARGV[3] random seed (ties are broken at random; the seed comes from the caller)
  ARGV[4] producer id
  ARGV[5] number of jobs n; then 6 fields per job:
            jobId, session ('' for none), payload (JSON), timeoutMs, attempt,
            excluded workers ('' or ids joined by ',')

  Returns a flat array of 2n values: for each job, the chosen workerId or 'SATURATED' (live
  workers, none with room) or 'NO_WORKERS' (no live worker), then 1 when the session's binding was
  used (an affinity hit) and 0 otherwise.
]]
local loadKey, readyKey, aliveKey = KEYS[1], KEYS[2], KEYS[3]
local base = ARGV[1]
local affinityTtl = tonumber(ARGV[2])
local producer = ARGV[4]
local n = tonumber(ARGV[5])

math.randomseed(tonumber(ARGV[3]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function isAlive(w)
  local lease = redis.call('ZSCORE', aliveKey, w)
  return lease ~= false and tonumber(lease) >= now
end

local function excludedSet(list)
  if list == '' then return nil end
  local set = {}
  for id in string.gmatch(list, '[^,]+') do set[id] = true end
  return set
end

-- Least-loaded candidate: the lowest score of `ready`, a random one among equal scores. Ranks
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

-- With exclusions (hedge copies), look at a window as wide as the exclusions plus a margin.
local function pickExcluding(excluded, count)
  local window = redis.call('ZRANGE', readyKey, 0, count + 15, 'WITHSCORES')
  local best, bestScore, ties = nil, nil, 0
  for i = 1, #window, 2 do
    local w, score = window[i], tonumber(window[i + 1])
    if not excluded[w] then
      if not isAlive(w) then
        redis.call('ZREM', readyKey, w)
      elseif bestScore == nil or score < bestScore then
        best, bestScore, ties = w, score, 1
      elseif score == bestScore then
        ties = ties + 1
        if math.random(1, ties) == 1 then best = w end
      end
    end
  end
  return best
end

local out = {}
for i = 0, n - 1 do
  local o = 6 + i * 6
  local jobId, session, payload = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  local timeoutMs, attempt, exclude = tonumber(ARGV[o + 3]), ARGV[o + 4], ARGV[o + 5]
  local excluded = excludedSet(exclude)

  local w, hit = nil, 0
  local affKey = nil
  if session ~= '' then
    affKey = base .. 'aff:' .. session
    local bound = redis.call('GET', affKey)
    if bound and not (excluded and excluded[bound]) and redis.call('ZSCORE', readyKey, bound) and isAlive(bound) then
      w, hit = bound, 1
    end
  end
  if w == nil then
    if excluded then
      local count = 0
      for _ in pairs(excluded) do count = count + 1 end
      w = pickExcluding(excluded, count)
    else
      w = pickAny()
    end
  end

  if w == nil then
    if redis.call('ZCOUNT', aliveKey, now, '+inf') > 0 then
      out[#out + 1] = 'SATURATED'
    else
      out[#out + 1] = 'NO_WORKERS'
    end
    out[#out + 1] = 0
  else
    if affKey then
      if hit == 1 then
        redis.call('PEXPIRE', affKey, affinityTtl)
      else
        redis.call('SET', affKey, w, 'PX', affinityTtl)
      end
    end
    local load = tonumber(redis.call('ZINCRBY', loadKey, 1, w))
    local capacity = tonumber(redis.call('HGET', base .. 'w:' .. w, 'capacity'))
    if capacity == nil or load >= capacity then
      redis.call('ZREM', readyKey, w)
    else
      redis.call('ZADD', readyKey, load, w)
    end
    redis.call('XADD', base .. 'q:' .. w, '*',
      'id', jobId, 'payload', payload, 'session', session, 'attempt', attempt,
      'producer', producer, 'deadline', now + timeoutMs, 'enqueued', now)
    out[#out + 1] = w
    out[#out + 1] = hit
  end
end
return out
