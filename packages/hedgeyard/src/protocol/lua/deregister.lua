--[[
  deregister: remove workers whose streams are empty from the pool, with all their keys.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> utilisation (dispatch candidates)
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline
  KEYS[4..] for each worker i, in order: hy:{P}:w:<workerId> (HASH), then hy:{P}:q:<workerId>
            (STREAM)

  ARGV[1..] worker ids, in the order of their keys

  Returns one status per worker: 'OK' (removed) or 'BUSY' (its stream still holds entries; it is
  kept, draining, so that nothing is lost).
]]
--!include lib/wire.lua
local loadKey, readyKey, aliveKey = KEYS[1], KEYS[2], KEYS[3]
--!include lib/check.lua

if #KEYS ~= 3 + 2 * #ARGV then badArgument('deregister', #KEYS .. ' keys given for ' .. #ARGV .. ' workers') end
expectType(loadKey, 'zset')
expectType(readyKey, 'zset')
expectType(aliveKey, 'zset')
requireCommands('deregister', loadKey, { 'ZREM' })
if #ARGV > 0 then
  requireCommands('deregister', KEYS[4], { 'HSET', 'DEL' })
  requireCommands('deregister', KEYS[5], { 'DEL' })
end
local busy = {}
for i = 1, #ARGV do
  if not isId(ARGV[i]) then badArgument('deregister', 'worker id is not a valid id') end
  local hash, q = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  expectType(hash, 'hash')
  -- A stream key of another type holds no job of ours: it goes with the worker.
  busy[i] = redis.call('TYPE', q)['ok'] == 'stream' and redis.call('XLEN', q) > 0
end

local out = {}
for i = 1, #ARGV do
  local w, hash, q = ARGV[i], KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  if busy[i] then
    redis.call('HSET', hash, 'state', 'draining')
    redis.call('ZREM', readyKey, w)
    out[#out + 1] = 'BUSY'
  else
    redis.call('DEL', q, hash)
    redis.call('ZREM', loadKey, w)
    redis.call('ZREM', readyKey, w)
    redis.call('ZREM', aliveKey, w)
    out[#out + 1] = 'OK'
  end
end
return out
