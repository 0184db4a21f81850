--[[
  complete: finish a batch of jobs: fence, elect the result, acknowledge, release load, count,
  publish each result to its producer, and stop the other copies of a hedged job that won.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> load (dispatch candidates)
  KEYS[3] -> hy:{P}:dead    STREAM dead letters, capped with MAXLEN ~

  ARGV[1] base 'hy:{P}:'; derived keys, same {P} tag:
            hy:{P}:q:<workerId>            STREAM the entry is acknowledged and deleted from
            hy:{P}:w:<workerId>            HASH (state, capacity, processed, errors)
            hy:{P}:res:<jobId>             STRING result envelope, SET NX PX: the winner
            hy:{P}:res:<jobId>:<copy>      STRING a failed copy's envelope (hedged jobs), PX
            hy:{P}:copies:<jobId>          HASH workerId -> entryId of each copy (hedged jobs)
            hy:{P}:results:<producerId>    channel the results are published on, one message
                                           per producer per call: lines '<jobId> <envelope>'
            hy:{P}:cancel:<workerId>       channel a running losing copy's entryId is sent on
  ARGV[2] result TTL (ms) of jobs that do not carry their own
  ARGV[3] dead-letter stream cap
  ARGV[4] number of jobs n; then the jobs as records, each of one of two kinds:
            'f', then 9 fields: workerId, entryId, jobId, producerId,
              outcome ('ok' | 'err': the handler ran; 'skip': not run, no result;
                       'dead': the entry cannot be run, it goes to the dead letters with the
                       envelope as its reason), envelope,
              race ('' | 'h' | 't': see dispatch), copy number, result TTL ('' for the default)
            'p', workerId, producerId, outcome, result TTL, k, then k triples entryId, jobId,
              envelope: k jobs of race '' that share the rest. Three arguments per job instead
              of nine, for the common case of one worker finishing plain jobs of one producer.

  Returns an array of n statuses, in the order of the records:
    'OK'   the result was stored and published (or, for 'skip'/'dead', the entry was released)
    'DUP'  a result for the job already existed: this one was dropped
    'LOST' the entry was no longer pending for this worker (it was taken from it): nothing changed
]]
local loadKey, readyKey, deadKey = KEYS[1], KEYS[2], KEYS[3]
local base = ARGV[1]
local resultTtl, deadCap = ARGV[2], ARGV[3]
local n = tonumber(ARGV[4])

-- Per-stream, per-worker and per-producer work is gathered first and done once per batch: one
-- XDEL per stream (XDEL searches for the stream's new first entry once per call, not per id),
-- one load and counter update per worker, one PUBLISH per producer (results joined by '\n';
-- JSON envelopes never contain a raw newline).
local out = {}
local deletes, released, processed, errors, messages = {}, {}, {}, {}, {}
local workers, producers = {}, {}

local function touch(w)
  if deletes[w] == nil then
    deletes[w], released[w], processed[w], errors[w] = {}, 0, 0, 0
    workers[#workers + 1] = w
  end
end

local function publish(producer, line)
  if messages[producer] == nil then
    messages[producer] = {}
    producers[#producers + 1] = producer
  end
  local m = messages[producer]
  m[#m + 1] = line
end

-- The winner of a hedged job stops its siblings: an unread copy is removed from its stream (its
-- load released here), a running one is told to abort through its worker's cancel channel.
local function cancelSiblings(jobId, winner, winnerEntry)
  local copiesKey = base .. 'copies:' .. jobId
  local copies = redis.call('HGETALL', copiesKey)
  for i = 1, #copies, 2 do
    local w, entryId = copies[i], copies[i + 1]
    if not (w == winner and entryId == winnerEntry) then
      local q = base .. 'q:' .. w
      if #redis.call('XPENDING', q, 'hy', entryId, entryId, 1) > 0 then
        redis.call('PUBLISH', base .. 'cancel:' .. w, entryId)
      elseif #redis.call('XRANGE', q, entryId, entryId) > 0 then
        touch(w)
        local d = deletes[w]
        d[#d + 1] = entryId
        released[w] = released[w] + 1
      end
    end
  end
  redis.call('DEL', copiesKey)
end

-- Fencing: only an entry still pending in the worker's stream may be completed. One XACK per
-- stream acknowledges the whole batch; when it acknowledges fewer than it was given, an entry
-- that is no longer in the stream is the one that was taken from this worker (rescue deletes
-- what it moves), and only that one is refused.
local W, E, J, P, OUT, ENV, RACE, COPY, TTL = {}, {}, {}, {}, {}, {}, {}, {}, {}
local o = 5
while #W < n do
  local kind = ARGV[o]
  if kind == 'p' then
    local w, producer, outcome, ttl, k = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], tonumber(ARGV[o + 5])
    o = o + 6
    for _ = 1, k do
      local i = #W + 1
      W[i], E[i], J[i], P[i], OUT[i], ENV[i] = w, ARGV[o], ARGV[o + 1], producer, outcome, ARGV[o + 2]
      RACE[i], COPY[i], TTL[i] = '', '', ttl
      o = o + 3
    end
  elseif kind == 'f' then
    local i = #W + 1
    W[i], E[i], J[i], P[i], OUT[i], ENV[i] = ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5], ARGV[o + 6]
    RACE[i], COPY[i], TTL[i] = ARGV[o + 7], ARGV[o + 8], ARGV[o + 9]
    o = o + 10
  else
    return redis.error_reply('complete: unknown record kind ' .. tostring(kind) .. ' at argument ' .. o)
  end
end

local byStream, streams = {}, {}
for i = 1, n do
  local w = W[i]
  if byStream[w] == nil then
    byStream[w] = {}
    streams[#streams + 1] = w
  end
  local ids = byStream[w]
  ids[#ids + 1] = E[i]
end
local lost = {}
for _, w in ipairs(streams) do
  local q, ids = base .. 'q:' .. w, byStream[w]
  if redis.call('XACK', q, 'hy', unpack(ids)) < #ids then
    for _, entryId in ipairs(ids) do
      if #redis.call('XRANGE', q, entryId, entryId) == 0 then lost[w .. ' ' .. entryId] = true end
    end
  end
end

for i = 1, n do
  local w, entryId, jobId, producer = W[i], E[i], J[i], P[i]
  local outcome, envelope, race, copy = OUT[i], ENV[i], RACE[i], COPY[i]
  local ttl = TTL[i]
  if ttl == '' then ttl = resultTtl end

  local entryKey = w .. ' ' .. entryId
  if lost[entryKey] then
    out[#out + 1] = 'LOST'
  else
    -- The same entry twice in one batch is completed once.
    lost[entryKey] = true
    touch(w)
    local d = deletes[w]
    d[#d + 1] = entryId
    released[w] = released[w] + 1
    if outcome == 'dead' then
      -- Keep the entry as it was, for `hedgeyard dead list`, before it is deleted below.
      local found = redis.call('XRANGE', base .. 'q:' .. w, entryId, entryId)
      if #found == 1 then
        local args = { 'XADD', deadKey, 'MAXLEN', '~', deadCap, '*', 'reason', envelope, 'worker', w, 'entry', entryId }
        for _, v in ipairs(found[1][2]) do args[#args + 1] = v end
        redis.call(unpack(args))
      end
    end
    if outcome == 'skip' or outcome == 'dead' then
      out[#out + 1] = 'OK'
    else
      processed[w] = processed[w] + 1
      if outcome == 'err' then errors[w] = errors[w] + 1 end
      if outcome == 'err' and race ~= '' then
        -- A failed copy does not end a hedged job: kept under its own key, for recovery.
        redis.call('SET', base .. 'res:' .. jobId .. ':' .. copy, envelope, 'PX', ttl)
        publish(producer, jobId .. ' ' .. envelope)
        out[#out + 1] = 'OK'
      elseif redis.call('SET', base .. 'res:' .. jobId, envelope, 'NX', 'PX', ttl) then
        if race ~= '' then cancelSiblings(jobId, w, entryId) end
        publish(producer, jobId .. ' ' .. envelope)
        out[#out + 1] = 'OK'
      else
        out[#out + 1] = 'DUP'
      end
    end
  end
end

for _, w in ipairs(workers) do
  local wKey = base .. 'w:' .. w
  redis.call('XDEL', base .. 'q:' .. w, unpack(deletes[w]))
  local load = tonumber(redis.call('ZINCRBY', loadKey, -released[w], w))
  if load < 0 then
    load = 0
    redis.call('ZADD', loadKey, 0, w)
  end
  if redis.call('ZSCORE', readyKey, w) then
    redis.call('ZADD', readyKey, load, w)
  else
    local info = redis.call('HMGET', wKey, 'state', 'capacity')
    if info[1] == 'active' and load < tonumber(info[2]) then
      redis.call('ZADD', readyKey, load, w)
    end
  end
  if processed[w] > 0 then redis.call('HINCRBY', wKey, 'processed', processed[w]) end
  if errors[w] > 0 then redis.call('HINCRBY', wKey, 'errors', errors[w]) end
end
for _, producer in ipairs(producers) do
  redis.call('PUBLISH', base .. 'results:' .. producer, table.concat(messages[producer], '\n'))
end
return out
