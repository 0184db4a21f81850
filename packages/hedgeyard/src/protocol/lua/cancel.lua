--[[
  cancel: stop a job's copies from any process, by job id. An unread copy leaves its worker's
  stream with its load; a copy a worker has read (running, or read ahead) is sent to its worker's
  cancel channel, whose handler aborts it (its worker then completes it unrun). Unless a copy is
  kept, the job then ends: its result becomes a failure with the given code, its output stream (a
  streamed job's) gets its end entry, and its producer is told. With a kept copy (the first chunk
  of a hedged stream won), only the other copies are stopped.

  KEYS[1] -> hy:{P}:load            ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready           ZSET workerId -> utilisation (load / concurrency,
                                     placement/ready.lua) of the dispatch candidates
  KEYS[3] -> hy:{P}:res:<jobId>     STRING the job's result: it has ended when it exists
  KEYS[4] -> hy:{P}:copies:<jobId>  HASH workerId -> entryId of each copy (racing and streamed jobs)
  KEYS[5] -> hy:{P}:out:<jobId>     STREAM the job's output (streamed jobs)

  ARGV[1] base 'hy:{P}:'; keys learned inside, same {P} tag:
            hy:{P}:q:<workerId>          STREAM a copy's entry is read from (and an unread one deleted)
            hy:{P}:w:<workerId>          HASH state, capacity (whether a freed worker is a candidate),
                                         concurrency (its score)
            hy:{P}:cancel:<workerId>     channel a read copy's entry id is sent on, then a space
                                         and the message
            hy:{P}:results:<producerId>  channel the job's end is published on
            hy:{P}:inflight:<tenant>     ZSET a tenant's jobs in flight: the job leaves it when
                                         it ends here (its tenant read from a copy's entry)
  ARGV[2] job id
  ARGV[3] code of the failure the job ends with (CANCELLED, TIMEOUT, ABORTED, ...)
  ARGV[4] message of that failure
  ARGV[5] result TTL (ms)
  ARGV[6] entry id of the copy to keep ('' for none: the job ends)
  ARGV[7..] pairs workerId, entryId of copies the caller found (a plain job has no copies hash:
          its caller looks for its entry in the workers' streams)

  Every copy is checked (its entry still in its worker's stream, naming this job) and every key's
  type read before the first write.

  Returns { status, copies stopped while running, copies removed unread }, status one of:
    'CANCELLED' the job ended with the failure (or, with a kept copy, the others were stopped)
    'FINISHED'  the job had a result already: nothing changed
    'UNKNOWN'   no copy of the job was found and it has no copies hash: nothing changed
]]
--!include lib/wire.lua
local loadKey, readyKey, resKey, copiesKey, outKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local base, jobId, code, message, ttl, keep = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]

--!include lib/check.lua
--!include ../../placement/ready.lua
--!include lib/keys.lua
--!include lib/publish.lua
--!include lib/entry.lua
--!include lib/out.lua

if not isId(jobId) then badArgument('cancel', 'job id is not a valid id') end
if resKey ~= resultKeyOf(jobId) or copiesKey ~= copiesKeyOf(jobId) or outKey ~= outKeyOf(jobId) then
  badArgument('cancel', 'the keys do not match the job id')
end
if type(code) ~= 'string' or not string.find(code, '^[A-Z_]+$') then badArgument('cancel', 'code is not an error code') end
if type(message) ~= 'string' then badArgument('cancel', 'message is missing') end
ttl = positiveInteger(ttl)
if ttl == nil then badArgument('cancel', 'result TTL is not a positive whole number') end
ttl = string.format('%d', ttl)
if keep == nil or (keep ~= '' and not isStreamId(keep)) then badArgument('cancel', 'kept entry is not a stream id') end
if #ARGV % 2 ~= 0 then badArgument('cancel', 'copies come as pairs of worker id and entry id') end
expectType(loadKey, 'zset')
expectType(readyKey, 'zset')

if keep == '' and redis.call('EXISTS', resKey) == 1 then return { 'FINISHED', 0, 0 } end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- 1. Reads: where each copy is.
local pairs_ = {}
local hasCopies = redis.call('TYPE', copiesKey)['ok'] == 'hash'
if hasCopies then
  local copies = redis.call('HGETALL', copiesKey)
  for i = 1, #copies, 2 do pairs_[#pairs_ + 1] = { copies[i], copies[i + 1] } end
end
for i = 7, #ARGV, 2 do pairs_[#pairs_ + 1] = { ARGV[i], ARGV[i + 1] } end

local seen, running, unread, producer, tenant = {}, {}, {}, nil, nil
local released, order = {}, {}
for _, p in ipairs(pairs_) do
  local w, entryId = p[1], p[2]
  local key = tostring(w) .. ' ' .. tostring(entryId)
  if isId(w) and isStreamId(entryId) and entryId ~= keep and not seen[key] then
    seen[key] = true
    local q = queueKeyOf(w)
    if redis.call('TYPE', q)['ok'] == 'stream' then
      local found = redis.call('XRANGE', q, entryId, entryId)[1]
      local fields = found and found[1] == entryId and found[2]
      local id, entryProducer, entryTenant = nil, nil, nil
      if fields then
        local f = entryFields(fields)
        id, entryProducer, entryTenant = f.id, f.producer, f.tenant
      end
      if id == jobId then
        if producer == nil and isId(entryProducer) then producer = entryProducer end
        if tenant == nil and isId(entryTenant) then tenant = entryTenant end
        if #redis.call('XPENDING', q, CONSUMER_GROUP, entryId, entryId, 1) > 0 then
          running[#running + 1] = { w, entryId }
        else
          unread[#unread + 1] = { q, entryId }
          if released[w] == nil then
            released[w] = 0
            order[#order + 1] = w
          end
          released[w] = released[w] + 1
        end
      end
    end
  end
end
if keep == '' and not hasCopies and #running == 0 and #unread == 0 then return { 'UNKNOWN', 0, 0 } end

-- The new load of each worker an unread copy leaves, and whether it is a candidate then.
local loads = {}
for _, w in ipairs(order) do
  local load = tonumber(redis.call('ZSCORE', loadKey, w) or '0') - released[w]
  if load < 0 then load = 0 end
  local info = { false, false, false, false }
  if redis.call('TYPE', workerKeyOf(w))['ok'] == 'hash' then
    info = redis.call('HMGET', workerKeyOf(w), 'state', 'capacity', 'cooling_until', 'concurrency')
  end
  local capacity = tonumber(info[2])
  -- A worker cooling down (complete.lua) stays out of the candidates until heartbeat puts it back.
  local isCooling = info[3] ~= false and (tonumber(info[3]) or 0) > now
  local isReady = not isCooling and (redis.call('ZSCORE', readyKey, w) ~= false
    or (info[1] == 'active' and capacity ~= nil and load < capacity))
  loads[#loads + 1] = { w, load, isReady, readyScore(load, concurrencyOf(info[4])) }
end
local envelope = nil
local outOk = false
local endRecord = nil
if keep == '' then
  envelope = cjson.encode({ ok = false, workerId = '', copy = 0,
    error = { code = code, name = ERROR_NAME, message = message } })
  outOk = outUsable(outKey)
  requireCommands('cancel', resKey, { 'SET' })
  requireCommands('cancel', copiesKey, { 'DEL' })
  if outOk then requireCommands('cancel', outKey, { 'XADD', 'PEXPIRE' }) end
  if tenant then requireCommands('cancel', inflightKeyOf(tenant), { 'ZREM' }) end
end
requireCommands('cancel', loadKey, { 'ZADD' })

-- 2. Writes.
if keep == '' then
  redis.call('SET', resKey, envelope, 'PX', ttl)
  if outOk then endRecord = endOut(outKey, jobId, envelope, ttl) end
  redis.call('DEL', copiesKey)
  -- A key of another type is the tenant's own trouble: the slot then frees at the deadline.
  if tenant then pcall(redis.call, 'ZREM', inflightKeyOf(tenant), jobId) end
end
for _, u in ipairs(unread) do redis.call('XDEL', u[1], u[2]) end
for _, l in ipairs(loads) do
  redis.call('ZADD', loadKey, l[2], l[1])
  if l[3] then redis.call('ZADD', readyKey, l[4], l[1]) end
end
-- Messages last: everything above is stored whatever becomes of them.
for _, r in ipairs(running) do publishTo(cancelChannelOf(r[1]), r[2] .. ' ' .. message) end
if endRecord and producer then sendPushes(producer, { endRecord }) end
if envelope and producer then publishTo(resultChannelOf(producer), jobId .. ' ' .. envelope) end
return { 'CANCELLED', #running, #unread }
