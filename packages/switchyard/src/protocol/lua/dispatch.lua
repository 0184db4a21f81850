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
  ARGV[5] number of jobs n; then 7 fields per job:
            jobId, session ('' for none), payload (JSON), timeoutMs, attempt, maxAttempts,
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

--!include lib/pool.lua

local out = {}
for i = 0, n - 1 do
  local o = 6 + i * 7
  local jobId, session, payload = ARGV[o], ARGV[o + 1], ARGV[o + 2]
  local timeoutMs, attempt, maxAttempts, exclude = tonumber(ARGV[o + 3]), ARGV[o + 4], ARGV[o + 5], ARGV[o + 6]
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
    w = pick(excluded)
  end

  if w == nil then
    out[#out + 1] = noWorkerStatus()
    out[#out + 1] = 0
  else
    if affKey then
      if hit == 1 then
        redis.call('PEXPIRE', affKey, affinityTtl)
      else
        redis.call('SET', affKey, w, 'PX', affinityTtl)
      end
    end
    reserve(w)
    redis.call('XADD', base .. 'q:' .. w, '*',
      'id', jobId, 'payload', payload, 'session', session, 'attempt', attempt,
      'producer', producer, 'deadline', now + timeoutMs, 'enqueued', now, 'max', maxAttempts)
    out[#out + 1] = w
    out[#out + 1] = hit
  end
end
return out
