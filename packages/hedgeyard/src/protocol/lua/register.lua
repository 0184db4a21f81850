--[[
  register: add (or re-add, after a restart with the same id) workers to the pool.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> load (dispatch candidates)
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)

  ARGV[1] base 'hy:{P}:'; derived keys, same {P} tag:
            hy:{P}:w:<workerId>   HASH host, pid, concurrency, capacity, state, processed, errors, started
            hy:{P}:q:<workerId>   STREAM, consumer group 'hy' created here
  ARGV[2] lease (ms)
  ARGV[3] host, ARGV[4] pid, ARGV[5] concurrency, ARGV[6] capacity
  ARGV[7..] worker ids

  The load of a worker is set to the length of its stream, which is what it is by the invariant
  (a restarted worker finds its unfinished entries still there).
  Returns the Redis time in ms, so the caller can measure its clock offset.
]]
local loadKey, readyKey, aliveKey = KEYS[1], KEYS[2], KEYS[3]
local base, leaseMs = ARGV[1], tonumber(ARGV[2])
local capacity = tonumber(ARGV[6])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

for i = 7, #ARGV do
  local w = ARGV[i]
  local wKey, q = base .. 'w:' .. w, base .. 'q:' .. w
  redis.call('HSET', wKey, 'host', ARGV[3], 'pid', ARGV[4], 'concurrency', ARGV[5],
    'capacity', ARGV[6], 'state', 'active', 'started', now)
  redis.call('HSETNX', wKey, 'processed', 0)
  redis.call('HSETNX', wKey, 'errors', 0)
  local ok = pcall(redis.call, 'XGROUP', 'CREATE', q, 'hy', '0', 'MKSTREAM')
  if not ok and redis.call('EXISTS', q) == 0 then
    return redis.error_reply('cannot create consumer group on ' .. q)
  end
  local load = redis.call('XLEN', q)
  redis.call('ZADD', loadKey, load, w)
  redis.call('ZADD', aliveKey, now + leaseMs, w)
  if load < capacity then
    redis.call('ZADD', readyKey, load, w)
  else
    redis.call('ZREM', readyKey, w)
  end
end
return now
