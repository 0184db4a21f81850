--[[
  retry-dead: queue dead letters again as new jobs and remove them from the dead letters, each in
  one step, so that a letter is never lost (a failed call changes nothing) nor queued twice (a
  second retry finds it gone).

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> utilisation (load / concurrency, placement/ready.lua),
                                 the dispatch candidates
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[4] -> hy:{P}:dead    STREAM dead letters

  ARGV[1] base 'hy:{P}:'; keys learned inside, same {P} tag:
            hy:{P}:w:<workerId>    HASH (capacity, breaker, concurrency) of the chosen worker
            hy:{P}:q:<workerId>    STREAM the new job is added to
            hy:{P}:aff:<session>   STRING the letter's session, bound as a dispatch binds it
  ARGV[2] random seed
  ARGV[3] affinity TTL (ms)
  ARGV[4] timeout of the new jobs (ms)
  ARGV[5] producer id the results are published to
  ARGV[6..] pairs: dead letter id, new job id

  A letter keeps `reason`, `worker` and `entry` first, then the fields of the entry it was; the new
  job takes its payload, session and max from them (max falls back to its default when it fails
  its check), attempt 1.

  Returns one value per letter: the worker it was queued on, 'SATURATED' or 'NO_WORKERS' (left in
  the dead letters), 'MISSING' (no such letter: purged, or retried by someone else) or 'INVALID'
  (it has no payload, or fields that fail the checks: left in the dead letters).
]]
--!include lib/wire.lua
local loadKey, readyKey, aliveKey, deadKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base, producer, resultTtl = ARGV[1], ARGV[5], ''
local affinityTtl, timeoutMs = tonumber(ARGV[3]), tonumber(ARGV[4])

--!include lib/check.lua
--!include lib/keys.lua
--!include lib/entry.lua

if tonumber(ARGV[2]) == nil then badArgument('retry-dead', 'seed is not a number') end
if affinityTtl == nil or affinityTtl < 1 then badArgument('retry-dead', 'affinity TTL is not a positive number') end
if select(2, wholeNumber(ARGV[4] or '', 'timeout', 1)) then badArgument('retry-dead', 'timeout is not a positive whole number') end
if not isId(producer) then badArgument('retry-dead', 'producer id is not a valid id') end
if #ARGV % 2 ~= 1 then badArgument('retry-dead', 'letters come as pairs of dead letter id and new job id') end
for i = 6, #ARGV, 2 do
  if not isStreamId(ARGV[i]) then badArgument('retry-dead', 'dead letter id ' .. ARGV[i] .. ' is not a stream id') end
  if not isId(ARGV[i + 1]) then badArgument('retry-dead', 'job id ' .. ARGV[i + 1] .. ' is not a valid id') end
end
expectType(loadKey, 'zset')
expectType(readyKey, 'zset')
expectType(aliveKey, 'zset')
expectType(deadKey, 'stream')
requireCommands('retry-dead', loadKey, { 'ZINCRBY', 'ZADD', 'ZREM' })
requireCommands('retry-dead', deadKey, { 'XDEL' })
requireCommands('retry-dead', queueKeyOf(''), { 'XADD' })
requireCommands('retry-dead', affinityKeyOf(''), { 'SET', 'PEXPIRE' })

math.randomseed(tonumber(ARGV[2]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

--!include ../../placement/pool.lua
--!include ../../placement/place.lua

local out = {}
for i = 6, #ARGV, 2 do
  local deadId, jobId = ARGV[i], ARGV[i + 1]
  local found = redis.call('XRANGE', deadKey, deadId, deadId)
  if #found == 0 then
    out[#out + 1] = 'MISSING'
  else
    -- The letter's own fields come first; the entry's follow from the 7th on.
    local fields = found[1][2]
    local letterFields = {}
    for j = 7, #fields do letterFields[#letterFields + 1] = fields[j] end
    local e = readEntry(letterFields)
    local session = e.session
    -- Only the payload, the session and the attempt limit carry over; a limit that fails its check
    -- (the reason the entry died, say) becomes the default. Read from the entry's own text: a
    -- field that failed before it (the reason it died) leaves readEntry's max at the default.
    local max = wholeNumber(entryFields(letterFields).max or DEFAULT_MAX_TEXT, 'max', 1)
    if max == nil or max > MAX_ATTEMPTS_LIMIT then max = DEFAULT_MAX_ATTEMPTS end
    if type(e.payload) ~= 'string' or #session > MAX_SESSION_BYTES or string.find(session, '[%c{}]') then
      out[#out + 1] = 'INVALID'
    else
      local affKey = nil
      if session ~= '' then
        affKey = affinityKeyOf(session)
        if redis.call('TYPE', affKey)['ok'] ~= 'string' and redis.call('TYPE', affKey)['ok'] ~= 'none' then affKey = nil end
      end
      local w = dispatchOne(jobId, session, e.payload, timeoutMs, '1', tostring(max), nil, '', 1, affKey, nil)
      if w ~= 'SATURATED' and w ~= 'NO_WORKERS' then redis.call('XDEL', deadKey, deadId) end
      out[#out + 1] = w
    end
  end
end
return out
