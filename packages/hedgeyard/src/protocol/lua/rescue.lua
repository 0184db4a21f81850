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
  A job past its deadline is dropped (its caller already has TIMEOUT); a job whose attempts would
  exceed its maxAttempts goes to the dead-letter stream and its producer gets DEAD_LETTERED.
  Safe to run from many workers at once: each run is atomic and the next finds nothing left.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> load (dispatch candidates)
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[4] -> hy:{P}:dead    STREAM dead letters, capped with MAXLEN ~

  ARGV[1] base 'hy:{P}:'; derived keys, same {P} tag:
            hy:{P}:q:<workerId>          STREAM entries are moved from and to
            hy:{P}:w:<workerId>          HASH (capacity); removed with a dead worker
            hy:{P}:aff:<session>         STRING rebound to the new worker when it named the old
            hy:{P}:copies:<jobId>        HASH the moved copy's new place (hedged jobs)
            hy:{P}:res:<jobId>           STRING DEAD_LETTERED envelope, SET NX PX
            hy:{P}:results:<producerId>  channel the DEAD_LETTERED result is published on
  ARGV[2] random seed
  ARGV[3] mode: 'dead' | 'handback' | 'return'
  ARGV[4] most entries to move in this call (the rest wait for the next call)
  ARGV[5] dead-letter stream cap
  ARGV[6] result TTL (ms)
  ARGV[7] maxAttempts of entries that do not say
  ARGV[8..] worker ids (mode 'handback'); mode 'return': ARGV[8] the worker id, ARGV[9..] entry ids

  Returns { workers removed, jobs moved, jobs dead-lettered, jobs dropped as expired }; mode
  'return' adds how many of the given entry ids were dealt with: when no live worker had room, the
  ids from that one on stay with the worker.
]]
local loadKey, readyKey, aliveKey, deadKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base, mode = ARGV[1], ARGV[3]
local budget, deadCap, resultTtl = tonumber(ARGV[4]), ARGV[5], ARGV[6]
local defaultMax = tonumber(ARGV[7])

math.randomseed(tonumber(ARGV[2]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

--!include lib/pool.lua

local removed, moved, lettered, dropped = 0, 0, 0, 0

local function deadLetter(w, entryId, fields, f, reason)
  local args = { 'XADD', deadKey, 'MAXLEN', '~', deadCap, '*', 'reason', reason, 'worker', w, 'entry', entryId }
  for i = 1, #fields do args[#args + 1] = fields[i] end
  redis.call(unpack(args))
  lettered = lettered + 1
  if f.id and f.producer then
    local copy = f.copy or f.attempt or '1'
    local envelope = '{"ok":false,"workerId":"' .. w .. '","copy":' .. copy .. ',"error":{"code":"DEAD_LETTERED",' ..
      '"name":"HedgeyardError","message":"' .. reason .. '"}}'
    local ttl = f.ttl or resultTtl
    if (f.race or '') ~= '' then
      -- One copy of a racing job is lost, not the job: the others may still win.
      redis.call('SET', base .. 'res:' .. f.id .. ':' .. copy, envelope, 'PX', ttl)
      redis.call('PUBLISH', base .. 'results:' .. f.producer, f.id .. ' ' .. envelope)
    elseif redis.call('SET', base .. 'res:' .. f.id, envelope, 'NX', 'PX', ttl) then
      redis.call('PUBLISH', base .. 'results:' .. f.producer, f.id .. ' ' .. envelope)
    end
  end
end

-- The last entry the worker's group delivered: entries up to it were read (they are deleted on
-- completion, so any still there were started and not finished), entries after it were not.
local function lastDelivered(q)
  local last = '0-0'
  if redis.call('EXISTS', q) == 0 then return last end
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', q)) do
    for j = 1, #group, 2 do
      if group[j] == 'last-delivered-id' then last = group[j + 1] end
    end
  end
  return last
end

local function idAfter(a, b)
  local am, as = string.match(a, '(%d+)-(%d+)')
  local bm, bs = string.match(b, '(%d+)-(%d+)')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am > bm or (am == bm and as > bs)
end

-- Moves one entry of w's stream (q) to a live worker with room, or drops it (past its deadline),
-- or dead-letters it (undecodable, or out of attempts); then acknowledges and deletes it in q and
-- releases w's slot. Returns false, changing nothing, when no live worker has room for it.
local function moveEntry(w, q, entryId, fields, raise)
  local f = {}
  for i = 1, #fields, 2 do f[fields[i]] = fields[i + 1] end
  local attempt = tonumber(f.attempt or '1') or 1
  if raise then attempt = attempt + 1 end
  local maxAttempts = tonumber(f.max or '') or defaultMax
  if not (f.id and f.payload and f.producer) then
    deadLetter(w, entryId, fields, f, 'undecodable entry')
  elseif tonumber(f.deadline or '0') < now then
    dropped = dropped + 1
  elseif attempt > maxAttempts then
    deadLetter(w, entryId, fields, f, 'worker ' .. w .. ' was lost; ' .. maxAttempts .. ' attempts used')
  else
    local target = pick({ [w] = true })
    if target == nil then return false end
    reserve(target)
    local copiesKey = base .. 'copies:' .. f.id
    local hasCopies = (f.race or '') ~= '' and redis.call('HDEL', copiesKey, w) == 1
    -- An entry without `copy` is the copy its dispatch attempt numbered (before this raise).
    local copy = f.copy or f.attempt or '1'
    local add = { 'XADD', base .. 'q:' .. target, '*',
      'id', f.id, 'payload', f.payload, 'session', f.session or '', 'attempt', attempt,
      'copy', copy,
      'producer', f.producer, 'deadline', f.deadline, 'enqueued', f.enqueued or now, 'max', maxAttempts,
      'race', f.race or '' }
    -- An entry without `ttl` keeps none: the worker that runs it applies its own resultTtlMs.
    if f.ttl then
      add[#add + 1] = 'ttl'
      add[#add + 1] = f.ttl
    end
    local movedId = redis.call(unpack(add))
    if hasCopies then redis.call('HSET', copiesKey, target, movedId) end
    if f.session and f.session ~= '' then
      local affKey = base .. 'aff:' .. f.session
      if redis.call('GET', affKey) == w then redis.call('SET', affKey, target, 'KEEPTTL') end
    end
    moved = moved + 1
  end
  redis.call('XACK', q, 'hy', entryId)
  redis.call('XDEL', q, entryId)
  local load = tonumber(redis.call('ZINCRBY', loadKey, -1, w))
  if load < 0 then redis.call('ZADD', loadKey, 0, w) end
  budget = budget - 1
  return true
end

-- Moves entries of w's stream after `from` (exclusive; '-' for all). With raiseAttempt, entries
-- the worker had read get their attempt raised. Returns false when it had to stop (budget spent,
-- or no live worker with room), true when nothing is left to move.
local function moveEntries(w, from, raiseAttempt)
  local q = base .. 'q:' .. w
  local delivered = raiseAttempt and lastDelivered(q) or nil
  local entries = redis.call('XRANGE', q, from, '+', 'COUNT', budget)
  for _, entry in ipairs(entries) do
    local raise = delivered ~= nil and not idAfter(entry[1], delivered)
    if not moveEntry(w, q, entry[1], entry[2], raise) then return false end
  end
  return budget > 0
end

if mode == 'dead' then
  local dead = redis.call('ZRANGEBYSCORE', aliveKey, '-inf', '(' .. now, 'LIMIT', 0, 8)
  for _, w in ipairs(dead) do
    redis.call('ZREM', readyKey, w)
    if not moveEntries(w, '-', true) then break end
    local q = base .. 'q:' .. w
    if redis.call('XLEN', q) == 0 then
      redis.call('DEL', q, base .. 'w:' .. w)
      redis.call('ZREM', loadKey, w)
      redis.call('ZREM', aliveKey, w)
      removed = removed + 1
    end
  end
elseif mode == 'handback' then
  for i = 8, #ARGV do
    local w = ARGV[i]
    local q = base .. 'q:' .. w
    if redis.call('EXISTS', q) == 1 then
      if not moveEntries(w, '(' .. lastDelivered(q), false) then break end
    end
  end
elseif mode == 'return' then
  local w = ARGV[8]
  local q = base .. 'q:' .. w
  local handled = 0
  for i = 9, #ARGV do
    local found = redis.call('XRANGE', q, ARGV[i], ARGV[i])
    if #found == 1 and not moveEntry(w, q, ARGV[i], found[1][2], false) then break end
    handled = handled + 1
  end
  return { removed, moved, lettered, dropped, handled }
else
  return redis.error_reply('rescue: unknown mode ' .. tostring(mode))
end
return { removed, moved, lettered, dropped }
