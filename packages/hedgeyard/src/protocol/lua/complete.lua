--[[
  complete: finish a batch of jobs of the workers of one process: fence, elect the result, acknowledge, release
  load, count, publish each result to its producer, and stop the other copies of a hedged job
  that won. Which job an entry is, its producer, copy, race mode and result TTL are read from the
  entry itself, never taken from the caller: a worker can only complete entries of its own stream,
  as the jobs they are.

  KEYS[1] -> hy:{P}:load            ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready           ZSET workerId -> utilisation (load / concurrency,
                                     placement/ready.lua) of the dispatch candidates
  KEYS[3] -> hy:{P}:dead            STREAM dead letters, capped with MAXLEN ~
  KEYS[4..] for each worker i of the call, in order: hy:{P}:q:<worker i> (STREAM its entries,
            acknowledged and deleted), then hy:{P}:w:<worker i> (HASH state, capacity,
            concurrency, processed, errors, cooling_until, breaker_failures, breaker_cooloff,
            fails, breaker, breaker_until)

  ARGV[1] base 'hy:{P}:'; keys learned inside from the entries, same {P} tag:
            hy:{P}:res:<jobId>            STRING result envelope, SET NX PX: the winner
            hy:{P}:res:<jobId>:<copy>     STRING a failed copy's envelope (racing jobs), PX
            hy:{P}:copies:<jobId>         HASH workerId -> entryId of each copy (racing jobs)
            hy:{P}:out:<jobId>            STREAM a streamed job's output: its end entry is
                                          appended with the job's result
            hy:{P}:q:<sibling>            STREAM an unread losing copy is deleted from
            hy:{P}:results:<producerId>   channel the results are published on, one message
                                          per producer per call: lines '<jobId> <envelope>'
            hy:{P}:cancel:<sibling>       channel a running losing copy's entryId is sent on
            hy:{P}:inflight:<tenant>      ZSET a tenant's jobs in flight (lib/tenant.lua): a job
                                          whose result is elected here leaves it
  ARGV[2] result TTL (ms) of jobs whose entry carries none
  ARGV[3] dead-letter stream cap
  ARGV[4] number of workers m (the KEYS above hold 2m of theirs), then for each worker its id and
          the first and last entry ids it completes (a hint: the entries are read with one
          XRANGE between them, and any entry outside is looked up on its own)
  ARGV[5 + 3m] number of jobs n; then groups: worker index (1..m), outcome, k, then k pairs
          entryId, envelope, where the outcome is 'ok' | 'err' (the handler ran), 'skip' (not
          run, no result) or 'dead' (the entry cannot be run: it goes to the dead letters, the
          envelope field holding the reason)

  Every read and check comes before the first write, and the messages come after the last one.
  An entry that fails the checks of
  lib/entry.lua goes to the dead letters with the reason (its producer, when known, gets
  DEAD_LETTERED). An envelope with a line break (it would forge a second results line) is replaced
  by a PROTOCOL_ERROR failure.

  A failure whose envelope carries error.retryAfterMs (the upstream's 429) cools its worker down:
  the worker leaves `ready` and its hash gets cooling_until (ms, Redis time); heartbeat puts it
  back once that has passed, and no script puts a cooling worker back before.

  A worker's breaker (when register gave it breaker_failures > 0): each success resets its count
  of consecutive failures (`fails`), each retryable failure or TIMEOUT adds one; at
  breaker_failures the breaker opens (`breaker` 'open', breaker_until = now + breaker_cooloff, the
  worker out of `ready`); heartbeat half-opens it after that, which lets one probe job in (a
  capacity of 1); the probe's success closes it, its failure opens it again.

  A streamed job (race 's') is won by the copy that owns its output stream (it emitted the first
  chunk), whether it succeeded or failed, or, when no copy emitted, by the first success; a failed
  copy that emitted nothing is a failed copy as for race 'h'.

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
--!include lib/clock.lua
--!include ../../placement/ready.lua
--!include lib/keys.lua
--!include lib/publish.lua
--!include lib/entry.lua
--!include lib/dead.lua
--!include lib/out.lua

-- 1. Checks and reads: the arguments, the keys' types, every entry, every sibling of a winner.
-- As integers written by this script, so that a PX or MAXLEN argument is always valid text.
resultTtl, deadCap = positiveInteger(resultTtl), positiveInteger(deadCap)
if resultTtl == nil then badArgument('complete', 'result TTL is not a positive whole number') end
if deadCap == nil then badArgument('complete', 'dead-letter cap is not a positive whole number') end
resultTtl, deadCap = string.format('%d', resultTtl), string.format('%d', deadCap)
if m == nil or m < 1 or #KEYS ~= 3 + 2 * m then badArgument('complete', 'the worker count does not match the keys') end
local n = tonumber(ARGV[5 + 3 * m])
if n == nil or n < 0 then badArgument('complete', 'job count is not a number') end
-- Keys of another type fail the call where they are first read, before any write; the dead
-- letters are checked below, when an entry goes there.
local workers, workerById = {}, {}
for i = 1, m do
  local w = ARGV[2 + 3 * i]
  local queue, hash = KEYS[2 + 2 * i], KEYS[3 + 2 * i]
  if not isId(w) or queue ~= queueKeyOf(w) or hash ~= workerKeyOf(w) then
    badArgument('complete', 'worker ' .. i .. ' does not match its keys')
  end
  workers[i] = { id = w, queue = queue, hash = hash, first = ARGV[3 + 3 * i], last = ARGV[4 + 3 * i],
    deletes = {}, processed = 0, errors = 0 }
  workerById[w] = workers[i]
end

local OUTCOMES = { ok = true, err = true, skip = true, dead = true }
-- The jobs, as parallel arrays (no table per job: this runs for every job the pool completes):
-- their worker, entry id, outcome and envelope as given; then what the reads found: the job id,
-- producer, race, copy and ttl of the entry, its fields (kept for a dead letter), and `kind`:
-- 'LOST', 'DUP', 'dead', 'skip', 'plain' (elected by SET NX when written), 'copy' (a failed copy of
-- a racing job) or 'wins' (a racing job's winner).
local jobWorker, jobEntry, jobOutcome, jobEnvelope = {}, {}, {}, {}
local jobId, jobProducer, jobRace, jobCopy, jobTtl, jobTenant = {}, {}, {}, {}, {}, {}
local jobFields, jobKind, jobCopies, jobInvalid, jobOut = {}, {}, {}, {}, {}
do
  local o = 6 + 3 * m
  while #jobEntry < n do
    local worker, outcome, k = workers[tonumber(ARGV[o])], ARGV[o + 1], tonumber(ARGV[o + 2])
    if worker == nil then badArgument('complete', 'unknown worker index ' .. tostring(ARGV[o])) end
    if not OUTCOMES[outcome] then badArgument('complete', 'unknown outcome ' .. tostring(outcome)) end
    if k == nil or k < 1 or ARGV[o + 2 + 2 * k] == nil then badArgument('complete', 'a group is cut short') end
    o = o + 3
    for _ = 1, k do
      local i = #jobEntry + 1
      jobWorker[i], jobEntry[i], jobOutcome[i], jobEnvelope[i] = worker, ARGV[o], outcome, ARGV[o + 1]
      o = o + 2
    end
  end
  if #jobEntry ~= n then badArgument('complete', 'the groups hold ' .. #jobEntry .. ' jobs, not ' .. n) end
end

-- Fencing: only an entry still in its worker's stream may be completed (rescue and a winner's
-- sibling removal delete what they take). The same entry twice in one batch counts once.
-- Each worker's entries are read with one XRANGE between the first and last entry ids its caller
-- names, bounded to a few times as many entries as it completes; an entry that read did not bring
-- is looked up on its own, so the hint only makes the call cheaper, never wrong.
for _, worker in ipairs(workers) do
  local byId = {}
  if isStreamId(worker.first) and isStreamId(worker.last) then
    for _, entry in ipairs(redis.call('XRANGE', worker.queue, worker.first, worker.last, 'COUNT', 4 * n + 64)) do
      byId[entry[1]] = entry[2]
    end
  end
  worker.fieldsOf = byId
end
local winners, validProducers = {}, {}
local cancels, siblingDeletes = {}, {}
local released, order = {}, {}
local function release(w, count)
  if released[w] == nil then
    released[w] = 0
    order[#order + 1] = w
  end
  released[w] = released[w] + count
end
local hasDead, hasTenant = false, false
-- The entries of this call, by worker id: made only when a racing job wins (its siblings that are
-- in this call are released by it, not by the winner).
local inBatch = nil
local function isInBatch(w, entryId)
  if inBatch == nil then
    inBatch = {}
    for j = 1, n do
      local id = jobWorker[j].id
      inBatch[id] = inBatch[id] or {}
      inBatch[id][jobEntry[j]] = true
    end
  end
  return inBatch[w] ~= nil and inBatch[w][entryId] == true
end
for i = 1, n do
  local worker, entryId = jobWorker[i], jobEntry[i]
  local fieldsOf = worker.fieldsOf
  local fields = fieldsOf[entryId]
  if fields == nil then
    -- Not in the hinted range (or no such entry): an id that is not a stream id is not there.
    -- Only an id written as Redis writes it names one entry ('<ms>' alone names a range, '0<ms>-0'
    -- another spelling): anything else is LOST, so that XACK and XDEL act on the entry read here.
    if isStreamId(entryId) then
      local found = redis.call('XRANGE', worker.queue, entryId, entryId, 'COUNT', 1)
      if found[1] and found[1][1] == entryId then fields = found[1][2] end
    end
  end
  if fields == nil or fields == true then
    jobKind[i] = 'LOST'
  else
    -- Seen once: the same entry again in this batch is LOST.
    fieldsOf[entryId] = true
    release(worker.id, 1)
    local id, producer, race, copy, ttl, invalid, tenant = readJob(fields, validProducers)
    jobId[i], jobProducer[i], jobRace[i], jobCopy[i], jobTtl[i], jobTenant[i] = id, producer, race, copy, ttl, tenant
    if tenant ~= '' then hasTenant = true end
    local outcome = jobOutcome[i]
    if invalid then
      jobKind[i], jobFields[i], jobEnvelope[i], jobInvalid[i] = 'dead', fields, 'invalid entry: ' .. invalid, invalid
      hasDead = true
    elseif outcome == 'dead' then
      jobKind[i], jobFields[i] = 'dead', fields
      hasDead = true
    elseif outcome == 'skip' then
      jobKind[i] = 'skip'
    else
      if string.find(jobEnvelope[i], '\n', 1, true) then
        outcome = 'err'
        jobOutcome[i] = 'err'
        jobEnvelope[i] = failureEnvelope(worker.id, copy, 'PROTOCOL_ERROR',
          'the worker sent a result envelope with a line break')
      end
      local streamWins = nil
      if race == 's' and not winners[id] and redis.call('EXISTS', resultKeyOf(id)) == 0 then
        local outKey = outKeyOf(id)
        local usable, isStream = outUsable(outKey)
        local ow, oe = nil, nil
        if isStream then ow, oe = outOwner(outKey) end
        if ow == worker.id and oe == entryId then
          streamWins = true
        elseif ow == nil and outcome == 'ok' then
          streamWins = true
        elseif outcome == 'ok' then
          streamWins = false
        end
        if usable then jobOut[i] = outKey end
      end
      if outcome == 'err' and string.find(jobEnvelope[i], '"retryAfterMs"', 1, true) then
        local ok, env = pcall(cjson.decode, jobEnvelope[i])
        local ms = ok and type(env) == 'table' and type(env.error) == 'table' and tonumber(env.error.retryAfterMs)
        if ms and ms >= 1 and ms == ms then
          ms = math.min(math.ceil(ms), 3600000)
          if (worker.coolMs or 0) < ms then worker.coolMs = ms end
        end
      end
      -- What the breaker counts: a success, or a failure that says the upstream is failing (a
      -- retryable error or a timeout; a 429 is the cooldown's).
      if outcome == 'ok' then
        worker.events = worker.events or {}
        worker.events[#worker.events + 1] = true
      elseif worker.coolMs == nil and (string.find(jobEnvelope[i], '"retryable":true', 1, true)
          or string.find(jobEnvelope[i], '"code":"TIMEOUT"', 1, true)) then
        worker.events = worker.events or {}
        worker.events[#worker.events + 1] = false
      end
      if race == '' then
        -- A plain job's result is elected by SET NX when it is written: nothing depends on it here.
        jobKind[i] = 'plain'
      elseif streamWins == false then
        -- A copy that lost its stream's race and finished anyway: its result is dropped.
        jobKind[i] = 'DUP'
      elseif outcome == 'err' and not streamWins then
        -- A failed copy does not end a racing job: kept under its own key, for recovery.
        jobKind[i] = 'copy'
      elseif winners[id] or redis.call('EXISTS', resultKeyOf(id)) == 1 then
        jobKind[i] = 'DUP'
      else
        winners[id] = true
        jobKind[i] = 'wins'
        -- The winner stops its siblings: an unread copy is removed from its stream (its load
        -- released here), a running one is told to abort through its worker's cancel channel.
        local copiesKey = copiesKeyOf(id)
        expectType(copiesKey, 'hash')
        jobCopies[i] = copiesKey
        local copies = redis.call('HGETALL', copiesKey)
        for c = 1, #copies, 2 do
          local w, siblingEntry = copies[c], copies[c + 1]
          -- A sibling completed in this same call is released there, not here.
          if isId(w) and not (w == worker.id and siblingEntry == entryId) and not isInBatch(w, siblingEntry) then
            local q = queueKeyOf(w)
            if redis.call('TYPE', q)['ok'] == 'stream' then
              if #redis.call('XPENDING', q, CONSUMER_GROUP, siblingEntry, siblingEntry, 1) > 0 then
                cancels[#cancels + 1] = { w, siblingEntry }
              elseif #redis.call('XRANGE', q, siblingEntry, siblingEntry) > 0 then
                siblingDeletes[#siblingDeletes + 1] = { q, siblingEntry }
                release(w, 1)
              end
            end
          end
        end
      end
    end
  end
end

-- A worker's breaker after this call's outcomes, in their order, from its hash's breaker_failures,
-- breaker_cooloff, fails and breaker (info[5], info[6], info[7], info[4] of the read below).
local function stepBreaker(worker, info)
  local threshold, coolOff = tonumber(info[5]) or 0, tonumber(info[6]) or 0
  if threshold < 1 or coolOff < 1 then return end
  local fails, was = tonumber(info[7]) or 0, info[4] or 'closed'
  if was ~= 'open' and was ~= 'half' then was = 'closed' end
  local state, startFails = was, fails
  for _, isSuccess in ipairs(worker.events) do
    if isSuccess then
      fails = 0
      if state == 'half' then state = 'closed' end
    else
      fails = fails + 1
      if state == 'half' or (state == 'closed' and fails >= threshold) then state = 'open' end
    end
  end
  worker.breaker = { state = state, was = was, fails = fails, changed = fails ~= startFails, coolOff = coolOff }
end

-- The new load of every worker whose load changes, and whether it is a dispatch candidate then
-- (never while it cools down or its breaker is open; a half-open one only when idle).
local loads = {}
for _, w in ipairs(order) do
  local load = tonumber(redis.call('ZSCORE', loadKey, w) or '0') - released[w]
  if load < 0 then load = 0 end
  local info = { false, false, false, false }
  if workerById[w] then
    -- One read of the worker's hash serves its room, its cooldown and its breaker.
    info = redis.call('HMGET', workerById[w].hash, 'state', 'capacity', 'cooling_until', 'breaker',
      'breaker_failures', 'breaker_cooloff', 'fails', 'concurrency')
    if workerById[w].events then stepBreaker(workerById[w], info) end
  elseif redis.call('TYPE', workerKeyOf(w))['ok'] == 'hash' then
    -- A sibling's worker: its hash of another type is its own trouble, not this call's.
    local sibling = redis.call('HMGET', workerKeyOf(w), 'state', 'capacity', 'cooling_until', 'breaker',
      'concurrency')
    info = { sibling[1], sibling[2], sibling[3], sibling[4], false, false, false, sibling[5] }
  end
  local capacity = tonumber(info[2])
  local breaker = info[4]
  if workerById[w] and workerById[w].breaker then breaker = workerById[w].breaker.state end
  if breaker == 'half' and capacity then capacity = math.min(capacity, 1) end
  local isOut = breaker == 'open' or (workerById[w] ~= nil and workerById[w].coolMs ~= nil)
    or (info[3] ~= false and (tonumber(info[3]) or 0) > redisNow())
  local isReady = not isOut and ((breaker ~= 'half' and redis.call('ZSCORE', readyKey, w) ~= false)
    or (info[1] == 'active' and capacity ~= nil and load < capacity))
  loads[#loads + 1] = { w, load, isReady, isOut, readyScore(load, concurrencyOf(info[8])) }
end

requireCommands('complete', loadKey, { 'ZADD' })
if hasDead then
  expectType(deadKey, 'stream')
  requireCommands('complete', deadKey, { 'XADD' })
end
for _, worker in ipairs(workers) do
  requireCommands('complete', worker.queue, { 'XACK', 'XDEL' })
  requireCommands('complete', worker.hash, { 'HINCRBY', 'HSET', 'HDEL' })
end
requireCommands('complete', resultKeyOf(''), { 'SET', 'DEL' })
if next(jobOut) ~= nil then requireCommands('complete', outKeyOf(''), { 'XADD', 'PEXPIRE' }) end
if hasTenant then requireCommands('complete', inflightKeyOf(''), { 'ZREM' }) end

-- 2. Writes.
-- The result lines of each producer, and the ends of its streamed jobs (pushes, lib/out.lua).
local messages, producers = {}, {}
local endPushes, pushProducers = {}, {}
local function publish(producer, line) addFor(messages, producers, producer, line) end

-- The jobs that end here, by tenant: they leave its jobs in flight.
local ended, tenantOrder = {}, {}
local function endInflight(i)
  local tenant = jobTenant[i]
  if tenant == nil or tenant == '' then return end
  if ended[tenant] == nil then
    ended[tenant] = {}
    tenantOrder[#tenantOrder + 1] = tenant
  end
  local ids = ended[tenant]
  ids[#ids + 1] = jobId[i]
end

local out = {}
for i = 1, n do
  local kind = jobKind[i]
  if kind == 'LOST' then
    out[i] = 'LOST'
  else
    local worker, envelope = jobWorker[i], jobEnvelope[i]
    local id, producer = jobId[i], jobProducer[i]
    worker.deletes[#worker.deletes + 1] = jobEntry[i]
    if kind == 'dead' then
      -- Kept as it was, for `hedgeyard dead list`, before it is deleted below. Its producer, when
      -- known, is told; a racing copy only when its entry is valid (another copy may still win).
      local e = { id = id, producer = producer, race = jobRace[i], copy = jobCopy[i], ttl = jobTtl[i],
        invalid = jobInvalid[i] }
      deadLetter(worker.id, jobEntry[i], jobFields[i], e, envelope, publish)
      -- A plain job ends with its dead letter; a racing copy's other copies may still win.
      if jobRace[i] == '' then endInflight(i) end
      out[i] = 'OK'
    elseif kind == 'skip' then
      out[i] = 'OK'
    else
      worker.processed = worker.processed + 1
      if jobOutcome[i] == 'err' then worker.errors = worker.errors + 1 end
      local ttl = jobTtl[i] or resultTtl
      if kind == 'plain' then
        endInflight(i)
        -- SET NX elects the first result, across calls and within this one.
        if redis.call('SET', resultKeyOf(id), envelope, 'NX', 'PX', ttl) then
          publish(producer, id .. ' ' .. envelope)
          out[i] = 'OK'
        else
          out[i] = 'DUP'
        end
      elseif kind == 'copy' then
        redis.call('SET', copyResultKeyOf(id, jobCopy[i]), envelope, 'PX', ttl)
        publish(producer, id .. ' ' .. envelope)
        out[i] = 'OK'
      elseif kind == 'wins' then
        endInflight(i)
        redis.call('SET', resultKeyOf(id), envelope, 'PX', ttl)
        redis.call('DEL', jobCopies[i])
        if jobOut[i] then addFor(endPushes, pushProducers, producer, endOut(jobOut[i], id, envelope, ttl)) end
        publish(producer, id .. ' ' .. envelope)
        out[i] = 'OK'
      else
        out[i] = 'DUP'
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
  if worker.coolMs then
    redis.call('HSET', worker.hash, 'cooling_until', string.format('%d', redisNow() + worker.coolMs))
    redis.call('ZREM', readyKey, worker.id)
  end
  local b = worker.breaker
  if b then
    if b.changed then redis.call('HSET', worker.hash, 'fails', b.fails) end
    if b.state == 'open' and b.was ~= 'open' then
      redis.call('HSET', worker.hash, 'breaker', 'open', 'breaker_until', string.format('%d', redisNow() + b.coolOff))
      redis.call('ZREM', readyKey, worker.id)
    elseif b.state == 'closed' and b.was == 'half' then
      redis.call('HDEL', worker.hash, 'breaker', 'breaker_until')
    end
  end
end
for _, s in ipairs(siblingDeletes) do redis.call('XDEL', s[1], s[2]) end
-- A tenant's in-flight key of another type (written by someone else) is its own trouble: the
-- jobs' slots then free at their deadlines.
for _, tenant in ipairs(tenantOrder) do pcall(redis.call, 'ZREM', inflightKeyOf(tenant), unpack(ended[tenant])) end
for _, l in ipairs(loads) do
  redis.call('ZADD', loadKey, l[2], l[1])
  if l[3] then redis.call('ZADD', readyKey, l[5], l[1]) elseif l[4] then redis.call('ZREM', readyKey, l[1]) end
end
-- Messages last: everything above is stored whatever becomes of them. A PUBLISH refused (an ACL
-- without the channel) fails the call here, with the results stored and the entries acknowledged;
-- a producer reads the result key before it reports TIMEOUT, so the result still reaches it.
for _, c in ipairs(cancels) do publishTo(cancelChannelOf(c[1]), c[2]) end
for _, producer in ipairs(pushProducers) do sendPushes(producer, endPushes[producer]) end
for _, producer in ipairs(producers) do
  publishTo(resultChannelOf(producer), table.concat(messages[producer], '\n'))
end
return out
