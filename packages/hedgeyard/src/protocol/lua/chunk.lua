--[[
  chunk: append the chunks a process's workers' streamed jobs emitted during one event-loop turn
  to their jobs' output streams. A chunk is taken only from the copy that may write it: its entry
  is still in its worker's stream, the job has no result yet, and the job's output stream is this
  copy's (the first chunk of a job claims the stream for the copy that writes it: its hedge copies
  then lose); a later chunk must also be the next of the stream (its last entry the chunk before).
  Each stream's owner and last entry are read once per call. Which job an entry is, and its result
  TTL, are read from the entry, never taken from the caller. Chunk 1 writes into the stream's
  first entry, beside the owner, the job's producer and (for a job with no deadline) how long the
  stream is kept; a later chunk of a copy its stream's first entry names that way is then taken
  without reading the copy's entry again (only checked to be still pending for its worker, as a
  running job's entry is): a long request is not read for every write.

  KEYS[1..] for each item i, in order: hy:{P}:q:<worker> (STREAM the copy's entry), then
            hy:{P}:out:<jobId> (STREAM the job's output: an entry per write, its id 0-<the seq of
            its last chunk>), then hy:{P}:res:<jobId> (STRING the job's result: the job has ended
            when it exists)

  ARGV[1] base 'hy:{P}:'
  ARGV[2] result TTL (ms) of jobs whose entry carries none: the output stream is kept as long
  ARGV[3..] for each item i, in order: workerId, entryId, seq of its first chunk (1, 2, ...), its
          count of chunks k, and data: the chunk's JSON when k is 1, else the JSON array of the k
          chunks. It is written as one entry: fields d (one chunk) or b and n (k chunks).

  Every item's checks come before the first write; items of one job in one call are taken in
  order. The chunks taken are then pushed to their jobs' producers, one message per producer on
  hy:{P}:results:<producer> (lib/out.lua). Returns one status per item:
    'OK'    appended
    'LATE'  another copy of the job began its stream first: this copy lost the race
    'ENDED' the job has ended (a result, a cancel, an end entry): nothing more is taken
    'LOST'  the entry is no longer this worker's (gone from its stream; for a later chunk of the
            copy that owns the stream, no longer pending for its worker), is not a streamed
            job's, or its output key is not a stream, or the chunk is not the next one of its
            stream (also when the stream changed between the checks and the write)
]]
--!include lib/wire.lua
local base = ARGV[1]
local resultTtl = ARGV[2]
local n = (#ARGV - 2) / 5

--!include lib/check.lua
--!include lib/clock.lua
--!include lib/keys.lua
--!include lib/publish.lua
--!include lib/entry.lua
--!include lib/out.lua

resultTtl = positiveInteger(resultTtl)
if resultTtl == nil then badArgument('chunk', 'result TTL is not a positive whole number') end
if n % 1 ~= 0 or #KEYS ~= 3 * n then badArgument('chunk', 'keys and arguments do not match ' .. #KEYS / 3 .. ' items') end

-- A whole number from 1 written in decimal digits without leading zeros (as its caller sends
-- it, so its text can be written as it is), or nil.
local function digitsNumber(v)
  if type(v) ~= 'string' or #v > MAX_NUMBER_DIGITS or string.find(v, '^[1-9]%d*$') == nil then return nil end
  return tonumber(v)
end

local outPrefix = base .. KEY_OUT

-- The first entry of an output stream as a table of its fields, read once per call: w and e name
-- the copy that owns the stream, p its producer and k, for a job with no deadline, how long the
-- stream is kept (ms) (p and k since chunk 1 writes them); false when the stream has no entry or
-- the key is not a stream.
local firstOf = {}
local function firstEntry(outKey)
  local first = firstOf[outKey]
  if first == nil then
    first = false
    local got = redis.pcall('XRANGE', outKey, '-', '+', 'COUNT', 1)
    if got.err == nil and got[1] ~= nil then
      first = {}
      local fields = got[1][2]
      for j = 1, #fields, 2 do first[fields[j]] = fields[j + 1] end
    end
    firstOf[outKey] = first
  end
  return first
end

-- 1. Checks: each chunk's entry, the job it names, where its stream stands.
local status, ttls, owners, counts, keeps = {}, {}, {}, {}, {}
-- Of each item taken: its job, and the producer its chunks are pushed to.
local jobIds, producers, validProducers = {}, {}, {}
-- Per output stream, once read in this call: the next seq it takes, and the copy that owns it
-- (a job's chunks come in order; two copies of one job may both be in a call).
local nextSeq, ownerOf = {}, {}
-- Per worker stream, once checked in this call (a call mostly carries one worker's chunks): the
-- worker it belongs to, and its type.
local queueWorker, queueType = {}, {}
for i = 1, n do
  local o = 5 * (i - 1)
  local w, entryId = ARGV[3 + o], ARGV[4 + o]
  local q, outKey, resKey = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if queueWorker[q] ~= w then
    if not isId(w) or q ~= queueKeyOf(w) then badArgument('chunk', 'chunk ' .. i .. ': worker does not match its key') end
    queueWorker[q] = w
  end
  local seq, count = digitsNumber(ARGV[5 + o]), digitsNumber(ARGV[6 + o])
  if seq == nil or count == nil or seq + count - 1 > MAX_CHUNKS_LIMIT or type(ARGV[7 + o]) ~= 'string' then
    badArgument('chunk', 'item ' .. i .. ': seq and count are not whole numbers within ' .. MAX_CHUNKS_LIMIT .. ' chunks')
  end
  counts[i] = count
  local fields = nil
  local id, producer, deadline, race, ttl = nil, nil, nil, nil, nil
  if queueType[q] == nil then queueType[q] = redis.call('TYPE', q)['ok'] end
  if seq > 1 and queueType[q] == 'stream' then
    -- A later chunk: when the stream's first entry names this copy with its producer, the job is
    -- the one of the output key (chunk 1 checked that against the entry), and the entry need only
    -- still be this worker's: pending for it (read, not completed). Otherwise the entry is read.
    -- A p that is not an id, or a k that is not a whole number, was not written by chunk 1: the
    -- entry is read. Only an id written as Redis writes it names one entry ('5' alone names a range).
    local first = firstEntry(outKey)
    if first and first.w == w and first.e == entryId and isStreamId(entryId) and isId(first.p)
        and (first.k == nil or digitsNumber(first.k) ~= nil) then
      local pending = redis.pcall('XPENDING', q, CONSUMER_GROUP, entryId, entryId, 1, w)
      if pending.err == nil and #pending == 1 and pending[1][1] == entryId then
        id, producer, race, ttl = string.sub(outKey, #outPrefix + 1), first.p, 's', first.k
        -- No k: the job has a deadline, and chunk 1 set the stream's TTL for good.
        if ttl == nil then deadline = 0 end
      end
    end
  end
  if id == nil and queueType[q] == 'stream' and isStreamId(entryId) then
    local found = redis.call('XRANGE', q, entryId, entryId)[1]
    if found and found[1] == entryId then fields = found[2] end
  end
  if fields then
    -- A streamed job's entry as dispatch writes it: job and payload, race=s its only name=value.
    if #fields == 4 and fields[1] == 'job' and fields[3] == 'payload' then
      id, producer, deadline = string.match(fields[2], '^([^ ]+) ([^ ]+) ([^ ]+) [^ ]+ race=s$')
      if id ~= nil then race = 's' end
      if deadline == '-' then deadline = nil end
    end
    if id == nil then
      local f, shape = entryFields(fields)
      id, producer, deadline, race, ttl = f.id, f.producer, f.deadline, f.race, f.ttl
      -- An entry whose job field is not of its shape, or whose ttl is not a whole number, is
      -- one the worker's decoder refuses (it never runs): it takes no chunk.
      if shape ~= nil or (ttl ~= nil and not wholeNumber(ttl, 'ttl', 1)) then id = nil end
    end
    if deadline ~= nil then
      deadline = wholeNumber(deadline, 'deadline', 0)
      if deadline == nil then id = nil end
    end
  end
  -- Whom the chunk is pushed to: the entry's producer (none when it is not a valid id).
  if producer ~= nil and (validProducers[producer] or isId(producer)) then
    validProducers[producer] = true
    producers[i] = producer
  end
  if not (isId(id) and race == 's' and outKey == outKeyOf(id) and resKey == resultKeyOf(id)) then
    status[i] = 'LOST'
  elseif redis.call('EXISTS', resKey) == 1 then
    status[i] = 'ENDED'
  else
    local expected, owner = nextSeq[outKey], ownerOf[outKey]
    if expected == nil then
      -- The stream's last entry: none yet (chunk 1 claims the stream), the end (the job has
      -- ended, its result gone), or a chunk: then the stream must be this copy's (its first
      -- entry names the owner; one that expired and was begun again by another copy is not) and
      -- this the chunk after it. A key of another type takes nothing.
      local top = redis.pcall('XREVRANGE', outKey, '+', '-', 'COUNT', 1)
      if top.err then
        if string.sub(top.err, 1, 9) ~= 'WRONGTYPE' then error(top) end
        expected = -2
      elseif top[1] == nil then
        expected = 1
      elseif top[1][2][1] == 'end' then
        expected = -3
      else
        local lastSeq = tonumber(string.match(top[1][1], '^0%-(%d+)$'))
        local first = firstEntry(outKey)
        local ow, oe = first and first.w, first and first.e
        if lastSeq == nil then
          expected = -2
        elseif ow ~= w or oe ~= entryId then
          expected = -1
        else
          expected = lastSeq + 1
        end
      end
    elseif owner ~= nil and (owner[1] ~= w or owner[2] ~= entryId) then
      expected = -1
    end
    if expected == -2 then
      status[i] = 'LOST'
    elseif expected == -3 then
      status[i] = 'ENDED'
    elseif expected == -1 then
      status[i] = seq == 1 and 'LATE' or 'LOST'
    elseif seq ~= expected then
      status[i] = 'LOST'
    else
      status[i] = 'OK'
      jobIds[i] = id
      nextSeq[outKey] = expected + count
      if seq == 1 then ownerOf[outKey] = { w, entryId } end
      owners[i] = seq == 1
      -- How long the stream is kept: set by chunk 1 to the job's time left before its deadline
      -- (past which no chunk is taken: its producer ends the stream) plus its result TTL, so
      -- that a later chunk need not renew it; renewed by each chunk of a job with no deadline.
      local keep = ttl and tonumber(ttl) or resultTtl
      if deadline == nil then
        ttls[i] = string.format('%d', keep)
        -- Written into chunk 1's entry, for the later chunks of this copy.
        if seq == 1 then keeps[i] = ttls[i] end
      elseif seq == 1 then
        ttls[i] = string.format('%d', keep + math.max(0, deadline - redisNow()))
      end
    end
  end
end
if n > 0 then requireCommands('chunk', KEYS[2], { 'XADD', 'PEXPIRE' }) end

-- 2. Writes.
local failedOut = {}
-- The push records of each producer (lib/out.lua), in the order producers first appear.
local pushes, pushOrder = {}, {}
for i = 1, n do
  if status[i] == 'OK' then
    local outKey, o = KEYS[3 * i - 1], 5 * (i - 1)
    local count = counts[i]
    -- seq and count as checked: whole numbers, written in decimal digits.
    local firstText, countText, data = ARGV[5 + o], ARGV[6 + o], ARGV[7 + o]
    local id = count == 1 and '0-' .. firstText or '0-' .. string.format('%d', tonumber(firstText) + count - 1)
    -- The checks make this XADD's id the stream's next; should the stream have changed beneath
    -- them anyway (its top entries deleted by hand), the item is lost, not the call.
    local added
    if failedOut[outKey] then
      added = nil
    elseif owners[i] then
      -- Chunk 1's entry: the chunks, the copy that owns the stream, its producer and its keep.
      local args = { outKey, id, 'd', data }
      if count > 1 then args = { outKey, id, 'b', data, 'n', countText } end
      args[#args + 1] = 'w'
      args[#args + 1] = ARGV[3 + o]
      args[#args + 1] = 'e'
      args[#args + 1] = ARGV[4 + o]
      if producers[i] then
        args[#args + 1] = 'p'
        args[#args + 1] = producers[i]
        if keeps[i] then
          args[#args + 1] = 'k'
          args[#args + 1] = keeps[i]
        end
      end
      added = redis.pcall('XADD', unpack(args))
    elseif count == 1 then
      added = redis.pcall('XADD', outKey, id, 'd', data)
    else
      added = redis.pcall('XADD', outKey, id, 'b', data, 'n', countText)
    end
    if type(added) ~= 'string' then
      failedOut[outKey] = true
      status[i] = 'LOST'
    else
      if ttls[i] then redis.call('PEXPIRE', outKey, ttls[i]) end
      if producers[i] then
        addFor(pushes, pushOrder, producers[i], chunkRecord(jobIds[i], firstText, countText,
          owners[i] and ARGV[3 + o] or nil, owners[i] and ARGV[4 + o] or nil, data))
      end
    end
  end
end
-- 3. Pushes, last: one message per producer.
for _, producer in ipairs(pushOrder) do sendPushes(producer, pushes[producer]) end
return status
