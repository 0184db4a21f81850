--[[
  lib/out.lua: a streamed job's output stream hy:{P}:out:<jobId>, shared by chunk, claim,
  complete, rescue and cancel. Each write of chunks is one entry, its id 0-<the seq of its last
  chunk>: field d (one chunk's JSON), or b (the JSON array of several) and n (how many); the first
  entry also carries w and e, the worker and the entry id of the copy that owns the stream (it
  emitted first), then p, its producer, and for a job with no deadline k, how long the stream is
  kept (ms): chunk.lua takes a later chunk of that copy without reading its entry again.
  The stream ends with one entry of field `end`, the job's result envelope, at the next id (0-*).
  Chunks and ends are also pushed to the job's producer, on its results channel, so that it need
  not read every stream it follows: a message of pushes begins with '~' and a line break (a line
  of results begins with a job id), then records joined by line breaks, each
  '<jobId> <first seq> <count> <worker|-> <entry id|-> <bytes>' and a line break, then <bytes>
  bytes of data: the chunk's JSON (count 1) or the JSON array of the chunks; the owner's worker
  and entry id with chunk 1. An end is '<jobId> end <seq of the end entry> - - <bytes>' and the
  envelope. Pushes are a fast path: the stream stays the record, read by a producer that misses
  one (a gap in the seqs, a reconnect, nothing heard for a while).
  Needs lib/wire.lua and lib/check.lua before it; pushes need lib/keys.lua and lib/publish.lua.
]]

-- Whether the output key can be used: a stream, or not there yet. Another type (written by
-- someone else) makes the job end without a stream entry rather than fail the whole call.
local function outUsable(outKey)
  local t = redis.call('TYPE', outKey)['ok']
  return t == 'stream' or t == 'none', t == 'stream'
end

-- The worker and entry id that own a stream (from its first entry, which holds chunk 1 and maybe
-- more), or nil when it has none.
local function outOwner(outKey)
  local first = redis.call('XRANGE', outKey, '-', '+', 'COUNT', 1)[1]
  if first == nil then return nil, nil end
  local w, e
  local fields = first[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'w' then w = fields[i + 1] elseif fields[i] == 'e' then e = fields[i + 1] end
  end
  return w, e
end

-- Appends the end entry (the job's result envelope) and keeps the stream for `ttl` ms; returns
-- the record that pushes the end to the job's producer.
local function endOut(outKey, jobId, envelope, ttl)
  local id = redis.call('XADD', outKey, '0-*', 'end', envelope)
  redis.call('PEXPIRE', outKey, ttl)
  return jobId .. ' end ' .. string.sub(id, 3) .. ' - - ' .. #envelope .. '\n' .. envelope
end

-- A push record of `count` chunks from seq `first` (`w` and `e` the owner's, with chunk 1).
local function chunkRecord(jobId, first, count, w, e, data)
  return jobId .. ' ' .. first .. ' ' .. count .. ' ' .. (w or '-') .. ' ' .. (e or '-') .. ' ' .. #data .. '\n' .. data
end

-- Sends push records to a producer. A message refused (an ACL without the channel) is dropped,
-- not the call: the producer reads the stream when its pushes show a gap or stop.
local function sendPushes(producer, records)
  pcall(publishTo, resultChannelOf(producer), '~\n' .. table.concat(records, '\n'))
end
