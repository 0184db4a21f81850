--[[
  drain: stop dispatching to workers; they finish what they hold and then deregister.

  KEYS[1] -> hy:{P}:ready   ZSET workerId -> utilisation (load / concurrency, placement/ready.lua),
                                 the dispatch candidates
  KEYS[2..] for each worker i, in order: hy:{P}:w:<workerId> (HASH state)

  ARGV[1..] worker ids, in the order of their keys

  Returns the number of workers that were found and are now draining.
]]
--!include lib/wire.lua
local readyKey = KEYS[1]
--!include lib/check.lua

if #KEYS ~= 1 + #ARGV then badArgument('drain', #KEYS .. ' keys given for ' .. #ARGV .. ' workers') end
expectType(readyKey, 'zset')
requireCommands('drain', readyKey, { 'ZREM' })
if #ARGV > 0 then requireCommands('drain', KEYS[2], { 'HSET' }) end
for i = 1, #ARGV do
  if not isId(ARGV[i]) then badArgument('drain', 'worker id is not a valid id') end
  expectType(KEYS[1 + i], 'hash')
end

local count = 0
for i = 1, #ARGV do
  if redis.call('EXISTS', KEYS[1 + i]) == 1 then
    redis.call('HSET', KEYS[1 + i], 'state', 'draining')
    count = count + 1
  end
  redis.call('ZREM', readyKey, ARGV[i])
end
return count
