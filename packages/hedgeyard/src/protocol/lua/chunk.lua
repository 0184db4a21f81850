--[[
  chunk: append the chunks a process's workers' streamed jobs emitted during one event-loop turn
  to their jobs' output streams. A chunk is taken only from the copy that may write it: its entry
  is still in its worker's stream, the job has no result yet, and the job's output stream is this
  copy's (the first chunk of a job claims the stream for the copy that writes it: its hedge copies
  then lose). Which job an entry is, and its result TTL, are read from the entry, never taken from
  the caller.

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
    'ENDED' the job has ended (a result, a cancel): nothing more is taken
    'LOST'  the entry is no longer this worker's, is not a streamed job's, or its output key is
            not a stream, or the chunk is not the next one of its stream
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
if n % 1 ~= 0 or #KEYS ~= 3 * n then badArgument('chunk', 'keys and arguments do not match ' .. #KEYS / 3 .. ' items') end

-- 1. Checks: each chunk's entry, the job it names, where its stream stands.
local status, ttls, owners, counts = {}, {}, {}, {}
-- The next seq each output stream takes, once read in this call (a job's chunks come in order).
local nextSeq = {}
for i = 1, n do
  local o = 5 * (i - 1)
  local w, entryId, seqText = ARGV[3 + o], ARGV[4 + o], ARGV[5 + o]
  local q, outKey, resKey = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if not isId(w) or q ~= queueKeyOf(w) then badArgument('chunk', 'chunk ' .. i .. ': worker does not match its key') end
  local seq = wholeNumber(seqText, 'seq', 1)
  local count = wholeNumber(ARGV[6 + o], 'count', 1)
  if seq == nil or count == nil or seq + count - 1 > MAX_CHUNKS_LIMIT or type(ARGV[7 + o]) ~= 'string' then
    badArgument('chunk', 'item ' .. i .. ': seq and count are not whole numbers within ' .. MAX_CHUNKS_LIMIT .. ' chunks')
  end
  counts[i] = count
  local fields = nil
  if isStreamId(entryId) and redis.call('TYPE', q)['ok'] == 'stream' then
    local found = redis.call('XRANGE', q, entryId, entryId)[1]
    if found and found[1] == entryId then fields = found[2] end
  end
  local id, race, ttl = nil, nil, nil
  if fields then
    local f = entryFields(fields)
    id, race, ttl = f.id, f.race, f.ttl
  end
  if not (isId(id) and race == 's' and outKey == outKeyOf(id) and resKey == resultKeyOf(id)) then
    status[i] = 'LOST'
  elseif redis.call('EXISTS', resKey) == 1 then
    status[i] = 'ENDED'
  else
    local usable, isStream = outUsable(outKey)
    local expected = nextSeq[outKey]
    if expected == nil then
      expected = 1
      if isStream then
        local last = redis.call('XREVRANGE', outKey, '+', '-', 'COUNT', 1)[1]
        local lastSeq = last and tonumber(string.match(last[1], '^0%-(%d+)$'))
        local ow, oe = outOwner(outKey)
        if ow ~= w or oe ~= entryId then
          expected = -1
        elseif lastSeq then
          expected = lastSeq + 1
        end
      end
    end
    if not usable then
      status[i] = 'LOST'
    elseif expected == -1 then
      status[i] = seq == 1 and 'LATE' or 'LOST'
    elseif seq ~= expected then
      status[i] = 'LOST'
    else
      status[i] = 'OK'
      nextSeq[outKey] = expected + count
      local ttlMs = ttl and wholeNumber(ttl, 'ttl', 1)
      ttls[i] = string.format('%d', ttlMs or resultTtl)
      owners[i] = seq == 1
    end
  end
end
if n > 0 then requireCommands('chunk', KEYS[2], { 'XADD', 'PEXPIRE' }) end

-- 2. Writes.
for i = 1, n do
  if status[i] == 'OK' then
    local outKey, o = KEYS[3 * i - 1], 5 * (i - 1)
    local count = counts[i]
    local a = { 'XADD', outKey, '0-' .. string.format('%d', tonumber(ARGV[5 + o]) + count - 1) }
    if count == 1 then
      a[#a + 1] = 'd'; a[#a + 1] = ARGV[7 + o]
    else
      a[#a + 1] = 'b'; a[#a + 1] = ARGV[7 + o]; a[#a + 1] = 'n'; a[#a + 1] = ARGV[6 + o]
    end
    if owners[i] then
      a[#a + 1] = 'w'; a[#a + 1] = ARGV[3 + o]; a[#a + 1] = 'e'; a[#a + 1] = ARGV[4 + o]
    end
    redis.call(unpack(a))
    redis.call('PEXPIRE', outKey, ttls[i])
  end
end
return status
