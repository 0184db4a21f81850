--[[
  register: add (or re-add, after a restart with the same id) workers to the pool.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> utilisation (load / concurrency, placement/ready.lua),
                                 the dispatch candidates
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[4..] for each worker i, in order: hy:{P}:w:<workerId> (HASH host, pid, concurrency,
            capacity, state, processed, errors, started, breaker_failures, breaker_cooloff;
            a breaker's state fails, breaker, breaker_until is reset), then hy:{P}:q:<workerId> (STREAM, its
            consumer group created here)

  ARGV[1] lease (ms)
  ARGV[2] host, ARGV[3] pid, ARGV[4] concurrency, ARGV[5] capacity
  ARGV[6] breaker: consecutive failures that open it (0: no breaker), ARGV[7] its cool-off (ms)
  ARGV[8..] worker ids, in the order of their keys

  The load of a worker is set to the length of its stream, which is what it is by the invariant
  (a restarted worker finds its unfinished entries still there). A worker hash or stream, or a
  pool ZSET, of another type than ours (written by someone else) is replaced.
  Returns the Redis time in ms, so the caller can measure its clock offset.
]]
--!include lib/wire.lua
local loadKey, readyKey, aliveKey = KEYS[1], KEYS[2], KEYS[3]
local leaseMs, capacity = tonumber(ARGV[1]), tonumber(ARGV[5])
local n = #ARGV - 7
--!include lib/check.lua
--!include ../../placement/ready.lua

if leaseMs == nil or leaseMs < 1 then badArgument('register', 'lease is not a positive number') end
-- The concurrency is written in each hash, where placement reads it back (placement/ready.lua).
local concurrency = tonumber(ARGV[4])
if concurrency == nil or concurrencyOf(ARGV[4]) ~= concurrency then
  badArgument('register', 'concurrency is not a whole number from 1 to 999999999')
end
if capacity == nil or capacity < 1 then badArgument('register', 'capacity is not a positive number') end
if positiveInteger(ARGV[6]) == nil and ARGV[6] ~= '0' then badArgument('register', 'breaker failures is not a whole number') end
if positiveInteger(ARGV[7]) == nil then badArgument('register', 'breaker cool-off is not a positive whole number') end
if #KEYS ~= 3 + 2 * n then badArgument('register', #KEYS .. ' keys given for ' .. n .. ' workers') end

-- Reads and checks.
local replace = {}
local function expect(key, wanted)
  local kind = redis.call('TYPE', key)['ok']
  if kind ~= 'none' and kind ~= wanted then replace[#replace + 1] = key end
  return kind
end
expect(loadKey, 'zset')
expect(readyKey, 'zset')
expect(aliveKey, 'zset')
local hasGroup = {}
for i = 1, n do
  if not isId(ARGV[7 + i]) then badArgument('register', 'worker id is not a valid id') end
  local q = KEYS[3 + 2 * i]
  expect(KEYS[2 + 2 * i], 'hash')
  if expect(q, 'stream') == 'stream' then
    for _, group in ipairs(redis.call('XINFO', 'GROUPS', q)) do
      for j = 1, #group, 2 do
        if group[j] == 'name' and group[j + 1] == CONSUMER_GROUP then hasGroup[i] = true end
      end
    end
  end
end
requireCommands('register', loadKey, { 'ZADD', 'ZREM', 'DEL' })
if n > 0 then
  requireCommands('register', KEYS[4], { 'HSET', 'HSETNX', 'HDEL', 'DEL' })
  requireCommands('register', KEYS[5], { { 'XGROUP', 'CREATE' }, 'DEL' })
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Writes.
if #replace > 0 then redis.call('DEL', unpack(replace)) end
for i = 1, n do
  local w, hash, q = ARGV[7 + i], KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  redis.call('HSET', hash, 'host', ARGV[2], 'pid', ARGV[3], 'concurrency', ARGV[4],
    'capacity', ARGV[5], 'state', 'active', 'started', now, 'breaker_failures', ARGV[6],
    'breaker_cooloff', ARGV[7])
  redis.call('HDEL', hash, 'fails', 'breaker', 'breaker_until')
  redis.call('HSETNX', hash, 'processed', 0)
  redis.call('HSETNX', hash, 'errors', 0)
  -- The group exists already after a restart with the same id.
  if not hasGroup[i] then redis.call('XGROUP', 'CREATE', q, CONSUMER_GROUP, '0', 'MKSTREAM') end
  local load = redis.call('XLEN', q)
  redis.call('ZADD', loadKey, load, w)
  redis.call('ZADD', aliveKey, now + leaseMs, w)
  if load < capacity then
    redis.call('ZADD', readyKey, readyScore(load, concurrency), w)
  else
    redis.call('ZREM', readyKey, w)
  end
end
return now
