--[[
  deregister: remove workers whose streams are empty from the pool, with all their keys.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> load
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline

  ARGV[1] base 'hy:{P}:'; derived: hy:{P}:w:<workerId> HASH, hy:{P}:q:<workerId> STREAM
  ARGV[2..] worker ids

  Returns one status per worker: 'OK' (removed) or 'BUSY' (its stream still holds entries; it is
  kept, draining, so that nothing is lost).
]]
local loadKey, readyKey, aliveKey, base = KEYS[1], KEYS[2], KEYS[3], ARGV[1]
local out = {}
for i = 2, #ARGV do
  local w = ARGV[i]
  local q = base .. 'q:' .. w
  if redis.call('XLEN', q) > 0 then
    redis.call('HSET', base .. 'w:' .. w, 'state', 'draining')
    redis.call('ZREM', readyKey, w)
    out[#out + 1] = 'BUSY'
  else
    redis.call('DEL', q, base .. 'w:' .. w)
    redis.call('ZREM', loadKey, w)
    redis.call('ZREM', readyKey, w)
    redis.call('ZREM', aliveKey, w)
    out[#out + 1] = 'OK'
  end
end
return out
