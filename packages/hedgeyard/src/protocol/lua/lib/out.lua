--[[
  lib/out.lua: a streamed job's output stream hy:{P}:out:<jobId>, shared by chunk, claim,
  complete, rescue and cancel. Each write of chunks is one entry, its id 0-<the seq of its last
  chunk>: field d (one chunk's JSON), or b (the JSON array of several) and n (how many); the first
  entry also carries w and e, the worker and the entry id of the copy that owns the stream (it
  emitted first).
  The stream ends with one entry of field `end`, the job's result envelope, at the next id (0-*).
  Needs lib/wire.lua and lib/check.lua before it.
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

-- Appends the end entry (the job's result envelope) and keeps the stream for `ttl` ms.
local function endOut(outKey, envelope, ttl)
  redis.call('XADD', outKey, '0-*', 'end', envelope)
  redis.call('PEXPIRE', outKey, ttl)
end
