--[[
  drain: stop dispatching to workers; they finish what they hold and then deregister.

  KEYS[1] -> hy:{P}:ready   ZSET workerId -> load (dispatch candidates)

  ARGV[1] base 'hy:{P}:'; derived: hy:{P}:w:<workerId> HASH (state)
  ARGV[2..] worker ids

  Returns the number of workers that were found and are now draining.
]]
local readyKey, base = KEYS[1], ARGV[1]
local count = 0
for i = 2, #ARGV do
  local w = ARGV[i]
  if redis.call('EXISTS', base .. 'w:' .. w) == 1 then
    redis.call('HSET', base .. 'w:' .. w, 'state', 'draining')
    count = count + 1
  end
  redis.call('ZREM', readyKey, w)
end
return count
