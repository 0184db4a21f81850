--[[
  chunk: append the chunks a process's workers' streamed jobs emitted during one event-loop turn
  to their jobs' output streams. A chunk is taken only from the copy that may write it: its entry
  is still in its worker's stream, the job has no result yet, and the job's output stream is this
  copy's (the first chunk of a job claims the stream for the copy that writes it: its hedge copies
  then lose); a later chunk must also be the next of the stream (its last entry the chunk before).
  Each stream's owner and last entry are read once per call. Which job an entry is, and its result
  TTL, are read from the entry, never taken from the caller.

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
  order. Returns one status per item:
    'OK'    appended
    'LATE'  another copy of the job began its stream first: this copy lost the race
    'ENDED' the job has ended (a result, a cancel, an end entry): nothing more is taken
    'LOST'  the entry is no longer this worker's, is not a streamed job's, or its output key is
            not a stream, or the chunk is not the next one of its stream (also when the stream
            changed between the checks and the write)
]]
--!include lib/wire.lua
local base = ARGV[1]
local resultTtl = ARGV[2]
local n = (#ARGV - 2) / 5

--!include lib/check.lua
--!include lib/keys.lua
--!include lib/entry.lua
--!include lib/out.lua

resultTtl = positiveInteger(resultTtl)
if resultTtl == nil then badArgument('chunk', 'result TTL is not a positive whole number') end
local resultTtlText = string.format('%d', resultTtl)
if n % 1 ~= 0 or #KEYS ~= 3 * n then badArgument('chunk', 'keys and arguments do not match ' .. #KEYS / 3 .. ' items') end

-- 1. Checks: each chunk's entry, the job it names, where its stream stands.
local status, ttls, owners, counts = {}, {}, {}, {}
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
  local seq, count = positiveInteger(ARGV[5 + o]), positiveInteger(ARGV[6 + o])
  if seq == nil or count == nil or seq + count - 1 > MAX_CHUNKS_LIMIT or type(ARGV[7 + o]) ~= 'string' then
    badArgument('chunk', 'item ' .. i .. ': seq and count are not whole numbers within ' .. MAX_CHUNKS_LIMIT .. ' chunks')
  end
  counts[i] = count
  local fields = nil
  if queueType[q] == nil then queueType[q] = redis.call('TYPE', q)['ok'] end
  if queueType[q] == 'stream' and isStreamId(entryId) then
    local found = redis.call('XRANGE', q, entryId, entryId)[1]
    if found and found[1] == entryId then fields = found[2] end
  end
  local id, race, ttl = nil, nil, nil
  if fields then
    -- A streamed job's entry as dispatch writes it: job and payload, race=s its only name=value.
    if #fields == 4 and fields[1] == 'job' and fields[3] == 'payload' then
      id = string.match(fields[2], '^([^ ]+) [^ ]+ [^ ]+ [^ ]+ race=s$')
      if id ~= nil then race = 's' end
    end
    if id == nil then
      local f, shape = entryFields(fields)
      -- An entry whose job field is not of its shape, or whose ttl is not a whole number, is
      -- one the worker's decoder refuses (it never runs): it takes no chunk.
      if shape == nil and (f.ttl == nil or wholeNumber(f.ttl, 'ttl', 1)) then id, race, ttl = f.id, f.race, f.ttl end
    end
  end
  if not (isId(id) and race == 's' and outKey == outKeyOf(id) and resKey == resultKeyOf(id)) then
    status[i] = 'LOST'
  elseif redis.call('EXISTS', resKey) == 1 then
    status[i] = 'ENDED'
  else
    local expected, owner = nextSeq[outKey], ownerOf[outKey]
    if expected == nil then
      local t = redis.call('TYPE', outKey)['ok']
      if t == 'none' then
        expected = 1
      elseif t ~= 'stream' then
        expected = -2
      elseif seq == 1 then
        -- Chunks are there already: another copy's (this one is late), or this copy's own (a
        -- write that is sent again once it was taken: not the next chunk).
        local ow, oe = outOwner(outKey)
        expected = (ow == w and oe == entryId) and 0 or -1
      else
        -- Chunk 2 and later: the stream must be this copy's (its first entry names the owner; a
        -- stream that expired and was begun again by another copy is not), and its last entry
        -- the chunk before this one (an end entry there: the job has ended, its result gone).
        local ow, oe = outOwner(outKey)
        if ow ~= w or oe ~= entryId then
          expected = -1
        else
          local last = redis.call('XREVRANGE', outKey, '+', '-', 'COUNT', 1)[1]
          local lastSeq = last and tonumber(string.match(last[1], '^0%-(%d+)$'))
          if lastSeq == nil then
            expected = -2
          elseif last[2][1] == 'end' then
            expected = -3
          else
            expected = lastSeq + 1
          end
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
      nextSeq[outKey] = expected + count
      if seq == 1 then ownerOf[outKey] = { w, entryId } end
      ttls[i] = ttl and string.format('%d', tonumber(ttl)) or resultTtlText
      owners[i] = seq == 1
    end
  end
end
if n > 0 then requireCommands('chunk', KEYS[2], { 'XADD', 'PEXPIRE' }) end

-- 2. Writes.
local failedOut = {}
for i = 1, n do
  if status[i] == 'OK' then
    local outKey, o = KEYS[3 * i - 1], 5 * (i - 1)
    local count = counts[i]
    local a = { 'XADD', outKey, '0-' .. string.format('%d', tonumber(ARGV[5 + o]) + count - 1) }
    if count == 1 then
      a[#a + 1] = 'd'; a[#a + 1] = ARGV[7 + o]
    else
      a[#a + 1] = 'b'; a[#a + 1] = ARGV[7 + o]; a[#a + 1] = 'n'; a[#a + 1] = string.format('%d', count)
    end
    if owners[i] then
      a[#a + 1] = 'w'; a[#a + 1] = ARGV[3 + o]; a[#a + 1] = 'e'; a[#a + 1] = ARGV[4 + o]
    end
    -- The checks make this XADD's id the stream's next; should the stream have changed beneath
    -- them anyway (its top entries deleted by hand), the item is lost, not the call.
    if failedOut[outKey] or type(redis.pcall(unpack(a))) ~= 'string' then
      failedOut[outKey] = true
      status[i] = 'LOST'
    else
      redis.call('PEXPIRE', outKey, ttls[i])
    end
  end
end
return status
