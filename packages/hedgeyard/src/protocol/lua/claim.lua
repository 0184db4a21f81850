--[[
  claim: decide, just before a worker starts copies of hedged or tied jobs, which ones still need
  running: none whose job already has a result (another copy won); for a tied pair, only the copy
  that claims it first, unless the worker holding the claim is no longer alive (its copy was
  rescued and must run).

  KEYS[1] -> hy:{P}:load    routes the call to the pool's slot; not otherwise used
  KEYS[2] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)

  ARGV[1] base 'hy:{P}:'; derived keys, same {P} tag:
            hy:{P}:res:<jobId>            STRING the job's result, when a copy won
            hy:{P}:claim:<jobId>:<copy>   STRING workerId that started this tied pair, PX
  ARGV[2] claim TTL (ms)
  ARGV[3] workerId
  ARGV[4..] triples: jobId, race ('h' | 't'), copy number

  Returns one value per job: 1 to run it, 0 to skip it.
]]
local aliveKey = KEYS[2]
local base, ttl, worker = ARGV[1], ARGV[2], ARGV[3]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 4, #ARGV, 3 do
  local jobId, race, copy = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local run = redis.call('EXISTS', base .. 'res:' .. jobId) == 0
  if run and race == 't' then
    local claimKey = base .. 'claim:' .. jobId .. ':' .. copy
    if not redis.call('SET', claimKey, worker, 'NX', 'PX', ttl) then
      local holder = redis.call('GET', claimKey)
      local lease = holder and redis.call('ZSCORE', aliveKey, holder)
      if holder == worker or not lease or tonumber(lease) < now then
        redis.call('SET', claimKey, worker, 'PX', ttl)
      else
        run = false
      end
    end
  end
  out[#out + 1] = run and 1 or 0
end
return out
