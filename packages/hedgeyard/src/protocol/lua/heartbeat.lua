--[[
  heartbeat: renew the leases of workers and make them dispatch candidates again when they are
  active and have room (dispatch drops a candidate whose lease it found expired).

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> load (dispatch candidates)
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)

  ARGV[1] base 'hy:{P}:'; derived: hy:{P}:w:<workerId> HASH (state, capacity)
  ARGV[2] lease (ms)
  ARGV[3..] worker ids

  Returns { Redis time in ms, then one status per worker: 'OK'; 'DRAINING' (someone asked it to
  drain, e.g. `hedgeyard drain`); or 'GONE' (its hash no longer exists: it was removed from the
  pool and must register again) }.
]]
local loadKey, readyKey, aliveKey = KEYS[1], KEYS[2], KEYS[3]
local base, leaseMs = ARGV[1], tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local out = { now }
for i = 3, #ARGV do
  local w = ARGV[i]
  local info = redis.call('HMGET', base .. 'w:' .. w, 'state', 'capacity')
  if info[1] == false then
    out[#out + 1] = 'GONE'
  else
    redis.call('ZADD', aliveKey, now + leaseMs, w)
    if info[1] == 'active' and not redis.call('ZSCORE', readyKey, w) then
      local load = tonumber(redis.call('ZSCORE', loadKey, w) or '0')
      if load < tonumber(info[2]) then redis.call('ZADD', readyKey, load, w) end
    end
    if info[1] == 'draining' then out[#out + 1] = 'DRAINING' else out[#out + 1] = 'OK' end
  end
end
return out
