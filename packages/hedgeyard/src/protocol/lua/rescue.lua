--[[
  rescue: move the jobs of workers that left to live workers, so none is stuck.
    mode 'dead':     workers whose lease expired (found here); every entry of their streams
                     moves, read or not, the attempt raised for those it had read (started:
                     a job that kills its workers ends in the dead letters); then their keys
                     are removed.
    mode 'handback': the given draining workers; only their unread entries move (the ones they
                     run stay theirs), attempt unchanged.
    mode 'return':   one draining worker's entries it read ahead but did not start (ARGV[9..]),
                     attempt unchanged; an id no longer in its stream is skipped.
    mode 'forget':   as 'dead' (`hedgeyard pool forget-dead`), and also the workers in `load`
                     that have no lease at all; when no worker of the pool is alive, an entry
                     goes to the dead letters (its reason says so) instead of waiting for one.
  A job past its deadline is dropped (its caller already has TIMEOUT); a streamed job's copy whose
  job's output stream has begun cannot start over: the copy that owns the stream ends the job
  with WORKER_LOST (its caller has chunks of it already), any other copy of it is dropped; a job whose attempts would
  exceed its maxAttempts, or whose entry fails the checks of lib/entry.lua, goes to the dead-letter
  stream with the reason and its producer (when known) gets DEAD_LETTERED. Each entry and each
  worker is handled on its own: a bad entry is dead-lettered, a worker whose stream is not a
  stream is removed from the pool; neither stops the rescue of the others.
  Safe to run from many workers at once: each run is atomic and the next finds nothing left.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> utilisation (load / concurrency, placement/ready.lua),
                                 the dispatch candidates
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[4] -> hy:{P}:dead    STREAM dead letters, capped with MAXLEN ~

  ARGV[1] base 'hy:{P}:'; keys learned inside (the workers found dead, the live workers jobs move
  to, the jobs read from entries), same {P} tag:
            hy:{P}:q:<workerId>          STREAM entries are moved from and to
            hy:{P}:w:<workerId>          HASH (capacity, breaker, concurrency, host); removed with
                                         a dead worker
            hy:{P}:aff:<session>         STRING rebound to the new worker when it named the old
            hy:{P}:copies:<jobId>        HASH the moved copy's new place (racing jobs)
            hy:{P}:res:<jobId>[:<copy>]  STRING DEAD_LETTERED (or WORKER_LOST) envelope, PX
            hy:{P}:out:<jobId>           STREAM a streamed job's output: its WORKER_LOST end
            hy:{P}:results:<producerId>  channel the DEAD_LETTERED result is published on
            hy:{P}:inflight:<tenant>     ZSET a tenant's jobs in flight: a job that ends here
                                         (dropped, dead-lettered, lost mid-stream) leaves it
  ARGV[2] random seed
  ARGV[3] mode: 'dead' | 'handback' | 'return' | 'forget'
  ARGV[4] most entries to move in this call (the rest wait for the next call)
  ARGV[5] dead-letter stream cap
  ARGV[6] result TTL (ms)
  ARGV[7..] worker ids (mode 'handback'); mode 'return': ARGV[7] the worker id, ARGV[8..] entry ids

  Every argument and the type of every key in KEYS is checked before the first write; so is each
  key of a worker or a job before the writes that concern it.

  Returns { workers removed, jobs moved, jobs dead-lettered, jobs dropped (expired, or streamed
  and lost mid-stream) }; mode
  'return' adds how many of the given entry ids were dealt with: when no live worker had room, the
  ids from that one on stay with the worker.
]]
--!include lib/wire.lua
local loadKey, readyKey, aliveKey, deadKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base, mode = ARGV[1], ARGV[3]
local budget, deadCap, resultTtl = tonumber(ARGV[4]), ARGV[5], ARGV[6]

--!include lib/check.lua
--!include lib/keys.lua
--!include lib/publish.lua
--!include lib/entry.lua
--!include lib/dead.lua
--!include lib/out.lua

if mode ~= 'dead' and mode ~= 'handback' and mode ~= 'return' and mode ~= 'forget' then badArgument('rescue', 'unknown mode ' .. tostring(mode)) end
if tonumber(ARGV[2]) == nil then badArgument('rescue', 'seed is not a number') end
if budget == nil or budget < 1 then badArgument('rescue', 'budget is not a positive number') end
if positiveInteger(deadCap) == nil then badArgument('rescue', 'dead-letter cap is not a positive whole number') end
if positiveInteger(resultTtl) == nil then badArgument('rescue', 'result TTL is not a positive whole number') end
deadCap, resultTtl = string.format('%d', positiveInteger(deadCap)), string.format('%d', positiveInteger(resultTtl))
expectType(loadKey, 'zset')
expectType(readyKey, 'zset')
expectType(aliveKey, 'zset')
expectType(deadKey, 'stream')
requireCommands('rescue', loadKey, { 'ZINCRBY', 'ZADD', 'ZREM', 'DEL' })
requireCommands('rescue', deadKey, { 'XADD' })
requireCommands('rescue', queueKeyOf(''), { 'XADD', 'XACK', 'XDEL', 'DEL' })
requireCommands('rescue', resultKeyOf(''), { 'SET' })
requireCommands('rescue', resultChannelOf(''), { PUBLISH_COMMAND })
requireCommands('rescue', affinityKeyOf(''), { 'SET' })
requireCommands('rescue', copiesKeyOf(''), { 'HSET', 'HDEL', 'DEL' })
requireCommands('rescue', outKeyOf(''), { 'XADD', 'PEXPIRE' })
requireCommands('rescue', inflightKeyOf(''), { 'ZREM' })
for i = 7, #ARGV do
  if mode == 'return' and i > 7 then
    if not isStreamId(ARGV[i]) then badArgument('rescue', 'entry id ' .. ARGV[i] .. ' is not a stream id') end
  elseif not isId(ARGV[i]) then
    badArgument('rescue', 'worker id ' .. ARGV[i] .. ' is not a valid id')
  end
end

math.randomseed(tonumber(ARGV[2]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

--!include ../../placement/pool.lua

local removed, moved, lettered, dropped = 0, 0, 0, 0

-- Whether no worker of the pool is alive: read once, as nothing in this call makes one alive.
local noneAlive = nil
local function isNoneAlive()
  if noneAlive == nil then noneAlive = noWorkerStatus() == 'NO_WORKERS' end
  return noneAlive
end

local function publish(producer, line)
  publishTo(resultChannelOf(producer), line)
end

-- A job of a tenant that ends here leaves the tenant's jobs in flight (lib/tenant.lua). A key of
-- another type is the tenant's own trouble: the slot then frees at the job's deadline.
local function endInflight(e)
  if e.tenant == '' or e.invalid then return end
  pcall(redis.call, 'ZREM', inflightKeyOf(e.tenant), e.id)
end

-- The last entry the worker's group delivered: entries up to it were read (they are deleted on
-- completion, so any still there were started and not finished), entries after it were not.
local function lastDelivered(q)
  local last = '0-0'
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', q)) do
    local name, delivered
    for j = 1, #group, 2 do
      if group[j] == 'name' then name = group[j + 1] end
      if group[j] == 'last-delivered-id' then delivered = group[j + 1] end
    end
    if name == CONSUMER_GROUP and delivered then last = delivered end
  end
  return last
end

local function idAfter(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end

-- Whether a streamed copy must not move because its job's stream has begun (or its job has
-- ended): the copy that owns the stream ends the job with WORKER_LOST here.
local function endsStream(w, entryId, e)
  if e.race ~= 's' then return false end
  if redis.call('EXISTS', resultKeyOf(e.id)) == 1 then return true end
  local outKey = outKeyOf(e.id)
  local _, isStream = outUsable(outKey)
  if not isStream then return false end
  local ow, oe = outOwner(outKey)
  if ow == w and oe == entryId then
    local envelope = failureEnvelope(w, e.copy, 'WORKER_LOST',
      'worker ' .. w .. ' was lost after the job had begun its stream')
    local ttl = e.ttl and string.format('%d', e.ttl) or resultTtl
    redis.call('SET', resultKeyOf(e.id), envelope, 'PX', ttl)
    local record = endOut(outKey, e.id, envelope, ttl)
    redis.call('DEL', copiesKeyOf(e.id))
    endInflight(e)
    if e.producer then sendPushes(e.producer, { record }) end
    publish(e.producer, e.id .. ' ' .. envelope)
  end
  return true
end

-- Moves one entry of w's stream (q) to a live worker with room, or drops it (past its deadline),
-- or dead-letters it (invalid, or out of attempts); then acknowledges and deletes it in q and
-- releases w's slot. Returns false, changing nothing, when no live worker has room for it.
local function moveEntry(w, q, entryId, fields, raise)
  local e = readEntry(fields)
  if e.invalid then
    deadLetter(w, entryId, fields, e, 'invalid entry: ' .. e.invalid, publish)
    lettered = lettered + 1
  elseif e.deadline and e.deadline < now then
    endInflight(e)
    dropped = dropped + 1
  elseif endsStream(w, entryId, e) then
    dropped = dropped + 1
  elseif (raise and e.attempt + 1 or e.attempt) > e.max then
    deadLetter(w, entryId, fields, e, 'worker ' .. w .. ' was lost; ' .. e.max .. ' attempts used', publish)
    -- A plain job ends with its dead letter; a racing copy's other copies may still win.
    if e.race == '' then endInflight(e) end
    lettered = lettered + 1
  else
    if raise then e.attempt = e.attempt + 1 end
    local copiesKey = e.race ~= '' and copiesKeyOf(e.id) or nil
    if copiesKey and redis.call('TYPE', copiesKey)['ok'] ~= 'hash' then copiesKey = nil end
    local affKey = e.session ~= '' and affinityKeyOf(e.session) or nil
    if affKey and redis.call('TYPE', affKey)['ok'] ~= 'string' then affKey = nil end
    local excluded = { [w] = true }
    local movedId, target
    while movedId == nil do
      target = pick(excluded)
      if target == nil then break end
      local ok, id = pcall(rewriteEntry, queueKeyOf(target), e)
      if ok then
        movedId = id
        reserve(target)
      elseif not string.find(tostring(id), '^WRONGTYPE') then
        error(redis.error_reply(tostring(id)))
      else
        -- Its stream is of another type: out of the candidates, and the next one is tried.
        redis.call('ZREM', readyKey, target)
        excluded[target] = true
      end
    end
    if movedId ~= nil then
      if copiesKey and redis.call('HDEL', copiesKey, w) == 1 then redis.call('HSET', copiesKey, target, movedId) end
      if affKey and redis.call('GET', affKey) == w then redis.call('SET', affKey, target, 'KEEPTTL') end
      moved = moved + 1
    elseif mode == 'forget' and isNoneAlive() then
      -- Nobody is left to run it, and nobody would rescue it later: its caller hears now.
      deadLetter(w, entryId, fields, e, 'worker ' .. w .. ' was lost and no worker of the pool is alive', publish)
      if e.race == '' then endInflight(e) end
      lettered = lettered + 1
    else
      -- No live worker has room: the entry waits for the next call.
      return false
    end
  end
  redis.call('XACK', q, CONSUMER_GROUP, entryId)
  redis.call('XDEL', q, entryId)
  local load = tonumber(redis.call('ZINCRBY', loadKey, -1, w))
  if load < 0 then redis.call('ZADD', loadKey, 0, w) end
  budget = budget - 1
  return true
end

-- Moves entries of w's stream after `from` (exclusive; '-' for all). With raiseAttempt, entries
-- the worker had read get their attempt raised. Returns false when it had to stop (budget spent,
-- or no live worker with room), true when nothing is left to move.
local function moveEntries(w, q, from, raiseAttempt)
  local delivered = raiseAttempt and lastDelivered(q) or nil
  local entries = redis.call('XRANGE', q, from, '+', 'COUNT', budget)
  for _, entry in ipairs(entries) do
    local raise = delivered ~= nil and not idAfter(entry[1], delivered)
    if not moveEntry(w, q, entry[1], entry[2], raise) then return false end
  end
  return budget > 0
end

-- Removes a worker and all its keys from the pool.
local function forget(w, q)
  redis.call('DEL', q, workerKeyOf(w))
  redis.call('ZREM', loadKey, w)
  redis.call('ZREM', readyKey, w)
  redis.call('ZREM', aliveKey, w)
  removed = removed + 1
end

-- Up to `limit` workers of `load` without a lease in `alive` (a registration left half removed,
-- or an `alive` deleted by hand): nothing renews them, so only mode 'forget' looks for them.
local function leaseless(limit)
  local found = {}
  local members = redis.call('ZRANGE', loadKey, 0, -1)
  for i = 1, #members, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #members) do chunk[#chunk + 1] = members[j] end
    local leases = redis.call('ZMSCORE', aliveKey, unpack(chunk))
    for j = 1, #chunk do
      if not leases[j] then
        found[#found + 1] = chunk[j]
        if #found >= limit then return found end
      end
    end
  end
  return found
end

if mode == 'dead' or mode == 'forget' then
  local dead = redis.call('ZRANGEBYSCORE', aliveKey, '-inf', '(' .. now, 'LIMIT', 0, 8)
  if mode == 'forget' and #dead < 8 then
    for _, w in ipairs(leaseless(8 - #dead)) do dead[#dead + 1] = w end
  end
  for _, w in ipairs(dead) do
    redis.call('ZREM', readyKey, w)
    local q = queueKeyOf(w)
    local kind = redis.call('TYPE', q)['ok']
    if kind ~= 'stream' then
      -- No stream (already gone) or not a stream (written by someone else): nothing to move.
      forget(w, q)
    else
      if not moveEntries(w, q, '-', true) then break end
      if redis.call('XLEN', q) == 0 then forget(w, q) end
    end
  end
elseif mode == 'handback' then
  for i = 7, #ARGV do
    local w = ARGV[i]
    local q = queueKeyOf(w)
    if redis.call('TYPE', q)['ok'] == 'stream' then
      if not moveEntries(w, q, '(' .. lastDelivered(q), false) then break end
    end
  end
else
  local w = ARGV[7]
  local q = queueKeyOf(w)
  local handled = 0
  if w ~= nil and redis.call('TYPE', q)['ok'] == 'stream' then
    for i = 8, #ARGV do
      local found = redis.call('XRANGE', q, ARGV[i], ARGV[i])
      if #found == 1 and not moveEntry(w, q, ARGV[i], found[1][2], false) then break end
      handled = handled + 1
    end
  end
  return { removed, moved, lettered, dropped, handled }
end
return { removed, moved, lettered, dropped }
