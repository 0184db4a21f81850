--[[
  complete: finish a batch of jobs of the workers of one process: fence, elect the result, acknowledge, release
  load, count, publish each result to its producer, and stop the other copies of a hedged job
  that won. Which job an entry is, its producer, copy, race mode and result TTL are read from the
  entry itself, never taken from the caller: a worker can only complete entries of its own stream,
  as the jobs they are.

  KEYS[1] -> hy:{P}:load            ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready           ZSET workerId -> load (dispatch candidates)
  KEYS[3] -> hy:{P}:dead            STREAM dead letters, capped with MAXLEN ~
  KEYS[4..] for each worker i of the call, in order: hy:{P}:q:<worker i> (STREAM its entries,
            acknowledged and deleted), then hy:{P}:w:<worker i> (HASH state, capacity,
            processed, errors)

  ARGV[1] base 'hy:{P}:'; keys learned inside from the entries, same {P} tag:
            hy:{P}:res:<jobId>            STRING result envelope, SET NX PX: the winner
            hy:{P}:res:<jobId>:<copy>     STRING a failed copy's envelope (racing jobs), PX
            hy:{P}:copies:<jobId>         HASH workerId -> entryId of each copy (racing jobs)
            hy:{P}:q:<sibling>            STREAM an unread losing copy is deleted from
            hy:{P}:results:<producerId>   channel the results are published on, one message
                                          per producer per call: lines '<jobId> <envelope>'
            hy:{P}:cancel:<sibling>       channel a running losing copy's entryId is sent on
  ARGV[2] result TTL (ms) of jobs whose entry carries none
  ARGV[3] dead-letter stream cap
  ARGV[4] number of workers m (the KEYS above hold 2m of theirs), then their m ids
  ARGV[5 + m] number of jobs n; then groups: worker index (1..m), outcome, k, then k pairs
          entryId, envelope, where the outcome is 'ok' | 'err' (the handler ran), 'skip' (not
          run, no result) or 'dead' (the entry cannot be run: it goes to the dead letters, the
          envelope field holding the reason)

  Every read and check comes before the first write, and the messages come after the last one.
  An entry that fails the checks of
  lib/entry.lua goes to the dead letters with the reason (its producer, when known, gets
  DEAD_LETTERED). An envelope with a line break (it would forge a second results line) is replaced
  by a PROTOCOL_ERROR failure.

  Returns an array of n statuses, in the order of the records:
    'OK'   the result was stored and published (or, for 'skip'/'dead', the entry was released)
    'DUP'  a result for the job already existed: this one was dropped
    'LOST' the entry is no longer in the worker's stream (it was taken from it): nothing changed
]]
--!include lib/wire.lua
local loadKey, readyKey, deadKey = KEYS[1], KEYS[2], KEYS[3]
local base, resultTtl, deadCap = ARGV[1], ARGV[2], ARGV[3]
local m = tonumber(ARGV[4])

--!include lib/check.lua
--!include lib/keys.lua
--!include lib/entry.lua
--!include lib/dead.lua

-- 1. Checks and reads: the arguments, the keys' types, every entry, every sibling of a winner.
if select(2, wholeNumber(resultTtl, 'result TTL', 1)) then badArgument('complete', 'result TTL is not a positive whole number') end
if select(2, wholeNumber(deadCap, 'dead-letter cap', 1)) then badArgument('complete', 'dead-letter cap is not a positive whole number') end
if m == nil or m < 1 or #KEYS ~= 3 + 2 * m then badArgument('complete', 'the worker count does not match the keys') end
local n = tonumber(ARGV[5 + m])
if n == nil or n < 0 then badArgument('complete', 'job count is not a number') end
expectType(loadKey, 'zset')
expectType(readyKey, 'zset')
expectType(deadKey, 'stream')
local workers = {}
for i = 1, m do
  local w = ARGV[4 + i]
  local queue, hash = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  if not isId(w) or queue ~= queueKeyOf(w) or hash ~= workerKeyOf(w) then
    badArgument('complete', 'worker ' .. i .. ' does not match its keys')
  end
  expectType(queue, 'stream')
  expectType(hash, 'hash')
  workers[i] = { id = w, queue = queue, hash = hash, deletes = {}, processed = 0, errors = 0 }
end

local OUTCOMES = { ok = true, err = true, skip = true, dead = true }
-- One record per job: its worker, entry id, outcome, envelope; then what the reads found.
local jobs = {}
do
  local o = 6 + m
  while #jobs < n do
    local worker, outcome, k = workers[tonumber(ARGV[o])], ARGV[o + 1], tonumber(ARGV[o + 2])
    if worker == nil then badArgument('complete', 'unknown worker index ' .. tostring(ARGV[o])) end
    if not OUTCOMES[outcome] then badArgument('complete', 'unknown outcome ' .. tostring(outcome)) end
    if k == nil or k < 1 or ARGV[o + 2 + 2 * k] == nil then badArgument('complete', 'a group is cut short') end
    o = o + 3
    for _ = 1, k do
      jobs[#jobs + 1] = { worker = worker, entryId = ARGV[o], outcome = outcome, envelope = ARGV[o + 1] }
      o = o + 2
    end
  end
  if #jobs ~= n then badArgument('complete', 'the groups hold ' .. #jobs .. ' jobs, not ' .. n) end
end

-- Fencing: only an entry still in its worker's stream may be completed (rescue and a winner's
-- sibling removal delete what they take). The same entry twice in one batch counts once.
local seen, winners = {}, {}
local cancels, siblingDeletes = {}, {}
local released, order = {}, {}
local function release(w, count)
  if released[w] == nil then
    released[w] = 0
    order[#order + 1] = w
  end
  released[w] = released[w] + count
end
for _, job in ipairs(jobs) do
  local worker = job.worker
  local found = redis.call('XRANGE', worker.queue, job.entryId, job.entryId)
  local seenKey = worker.id .. ' ' .. job.entryId
  if #found == 0 or seen[seenKey] then
    job.status = 'LOST'
  else
    seen[seenKey] = true
    release(worker.id, 1)
    job.fields = found[1][2]
    local e = readEntry(job.fields)
    job.e = e
    if e.invalid then
      job.outcome, job.envelope = 'dead', 'invalid entry: ' .. e.invalid
    elseif job.outcome == 'ok' or job.outcome == 'err' then
      if string.find(job.envelope, '\n', 1, true) then
        job.outcome = 'err'
        job.envelope = failureEnvelope(worker.id, e.copy, 'PROTOCOL_ERROR',
          'the worker sent a result envelope with a line break')
      end
      if job.outcome == 'err' and e.race ~= '' then
        -- A failed copy does not end a racing job: kept under its own key, for recovery.
        job.copyFailure = true
      elseif e.race == '' then
        -- A plain job's result is elected by SET NX when it is written: nothing depends on it here.
        job.plain = true
      elseif winners[e.id] or redis.call('EXISTS', resultKeyOf(e.id)) == 1 then
        job.status = 'DUP'
      else
        winners[e.id] = true
        job.wins = true
        if e.race ~= '' then
          -- The winner stops its siblings: an unread copy is removed from its stream (its load
          -- released here), a running one is told to abort through its worker's cancel channel.
          local copiesKey = copiesKeyOf(e.id)
          expectType(copiesKey, 'hash')
          job.copiesKey = copiesKey
          local copies = redis.call('HGETALL', copiesKey)
          for i = 1, #copies, 2 do
            local w, entryId = copies[i], copies[i + 1]
            if isId(w) and not (w == worker.id and entryId == job.entryId) then
              local q = queueKeyOf(w)
              if redis.call('TYPE', q)['ok'] == 'stream' then
                if #redis.call('XPENDING', q, CONSUMER_GROUP, entryId, entryId, 1) > 0 then
                  cancels[#cancels + 1] = { w, entryId }
                elseif #redis.call('XRANGE', q, entryId, entryId) > 0 then
                  siblingDeletes[#siblingDeletes + 1] = { q, entryId }
                  release(w, 1)
                end
              end
            end
          end
        end
      end
    end
  end
end

-- The new load of every worker whose load changes, and whether it is a dispatch candidate then.
local loads = {}
for _, w in ipairs(order) do
  local load = tonumber(redis.call('ZSCORE', loadKey, w) or '0') - released[w]
  if load < 0 then load = 0 end
  local info = { false, false }
  if redis.call('TYPE', workerKeyOf(w))['ok'] == 'hash' then
    info = redis.call('HMGET', workerKeyOf(w), 'state', 'capacity')
  end
  local capacity = tonumber(info[2])
  local isReady = redis.call('ZSCORE', readyKey, w) ~= false
    or (info[1] == 'active' and capacity ~= nil and load < capacity)
  loads[#loads + 1] = { w, load, isReady }
end

requireCommands('complete', loadKey, { 'ZADD' })
requireCommands('complete', deadKey, { 'XADD' })
for _, worker in ipairs(workers) do
  requireCommands('complete', worker.queue, { 'XACK', 'XDEL' })
  requireCommands('complete', worker.hash, { 'HINCRBY' })
end
requireCommands('complete', resultKeyOf(''), { 'SET', 'DEL' })

-- 2. Writes.
local messages, producers = {}, {}
local function publish(producer, line)
  if messages[producer] == nil then
    messages[producer] = {}
    producers[#producers + 1] = producer
  end
  local msgs = messages[producer]
  msgs[#msgs + 1] = line
end

local out = {}
for _, job in ipairs(jobs) do
  local worker, e = job.worker, job.e
  if job.status == 'LOST' then
    out[#out + 1] = 'LOST'
  else
    worker.deletes[#worker.deletes + 1] = job.entryId
    if job.outcome == 'dead' then
      -- Kept as it was, for `hedgeyard dead list`, before it is deleted below.
      deadLetter(worker.id, job.entryId, job.fields, e, job.envelope, publish)
      out[#out + 1] = 'OK'
    elseif job.outcome == 'skip' then
      out[#out + 1] = 'OK'
    else
      worker.processed = worker.processed + 1
      if job.outcome == 'err' then worker.errors = worker.errors + 1 end
      local ttl = e.ttl or resultTtl
      if job.copyFailure then
        redis.call('SET', copyResultKeyOf(e.id, e.copy), job.envelope, 'PX', ttl)
        publish(e.producer, e.id .. ' ' .. job.envelope)
        out[#out + 1] = 'OK'
      elseif job.plain then
        if not winners[e.id] and redis.call('SET', resultKeyOf(e.id), job.envelope, 'NX', 'PX', ttl) then
          winners[e.id] = true
          publish(e.producer, e.id .. ' ' .. job.envelope)
          out[#out + 1] = 'OK'
        else
          out[#out + 1] = 'DUP'
        end
      elseif job.wins then
        redis.call('SET', resultKeyOf(e.id), job.envelope, 'PX', ttl)
        if job.copiesKey then redis.call('DEL', job.copiesKey) end
        publish(e.producer, e.id .. ' ' .. job.envelope)
        out[#out + 1] = 'OK'
      else
        out[#out + 1] = job.status
      end
    end
  end
end
for _, worker in ipairs(workers) do
  if #worker.deletes > 0 then
    redis.call('XACK', worker.queue, CONSUMER_GROUP, unpack(worker.deletes))
    redis.call('XDEL', worker.queue, unpack(worker.deletes))
  end
  if worker.processed > 0 then redis.call('HINCRBY', worker.hash, 'processed', worker.processed) end
  if worker.errors > 0 then redis.call('HINCRBY', worker.hash, 'errors', worker.errors) end
end
for _, s in ipairs(siblingDeletes) do redis.call('XDEL', s[1], s[2]) end
for _, l in ipairs(loads) do
  redis.call('ZADD', loadKey, l[2], l[1])
  if l[3] then redis.call('ZADD', readyKey, l[2], l[1]) end
end
-- Messages last: everything above is stored whatever becomes of them. A PUBLISH refused (an ACL
-- without the channel) fails the call here, with the results stored and the entries acknowledged;
-- a producer reads the result key before it reports TIMEOUT, so the result still reaches it.
for _, c in ipairs(cancels) do redis.call('PUBLISH', cancelChannelOf(c[1]), c[2]) end
for _, producer in ipairs(producers) do
  redis.call('PUBLISH', resultChannelOf(producer), table.concat(messages[producer], '\n'))
end
return out
