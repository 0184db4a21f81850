--[[
  lib/entry.lua: the one writer and the one reader of job entries in the Lua scripts (the
  TypeScript reader is decodeEntry in protocol/codec.ts, with the same fields, defaults and checks).
  Needs lib/wire.lua and lib/check.lua before it.

  An entry has two fields, three with a session, so that XRANGE reads well and a reader decodes
  few strings per job:
    job       '<id> <producer> <deadline> <enqueued>', then ' <name>=<value>' for each field
              below that differs from its default, in any order (every value in it is a word
              without spaces: ids, numbers, letters, a traceparent)
    payload   the request as JSON
    session   the session, when there is one (free text, so not in `job`)
  The fields of `job`:
    id        job id (1-MAX_ID_BYTES letters, digits and _ . : -)                   required
    producer  id of the producer that waits for the result (as id)                   required
    deadline  ms of Redis time after which the job is not run; '-' for none          required
    enqueued  ms of Redis time when the copy was first queued                        required
    attempt   attempts used so far, from 1                                           1
    copy      which copy of the job this is, from 1                                  = attempt
    max       attempts allowed before the job goes to the dead letters               DEFAULT_MAX_ATTEMPTS
    race      '' plain, 'h' copies race, 't' tied copies, 's' streamed (copies race
              to the first chunk)                                                   ''
    ttl       ms the result is kept                                                  the worker's
    tenant    the tenant (submit option limitKey) whose jobs in flight it counts
              among, in hy:{P}:inflight:<tenant> (as id)                             ''
    trace     the W3C traceparent of the copy's span (OpenTelemetry), kept by
              rescue; one that is not well formed is ignored, never fatal            none
  The words of `job` are the runs of characters between spaces. A name it does not know is
  ignored; a word past the fourth without '=' makes the entry invalid.
]]

local DEFAULT_MAX_TEXT = tostring(DEFAULT_MAX_ATTEMPTS)
local JOB_SHAPE = "job is not '<id> <producer> <deadline> <enqueued>' followed by name=value words"

-- Whether a value is a W3C traceparent of version 00: 00-<32 hex>-<16 hex>-<2 hex>, lower case
-- (the decoder in codec.ts checks the same shape).
local function isTraceparent(v)
  return #v == 55 and string.find(v, '^00%-[0-9a-f]+%-[0-9a-f]+%-[0-9a-f][0-9a-f]$') ~= nil
    and string.sub(v, 36, 36) == '-'
end

-- The names `job` may carry past its fourth word; any other is ignored (as decodeEntry does), so
-- that no word of `job` can stand for the id, the payload or the session.
local JOB_NAMES = { attempt = true, copy = true, max = true, race = true, ttl = true, tenant = true, trace = true }

-- The raw text of an entry's fields by name, `job` spread into its own (a deadline of '-' left
-- out), and the reason when `job` is missing or not of its shape.
local function entryFields(fields)
  local raw = {}
  for i = 1, #fields, 2 do raw[fields[i]] = fields[i + 1] end
  local f = { payload = raw.payload, session = raw.session }
  local job = raw.job
  if type(job) ~= 'string' then return f, 'job is missing' end
  local n = 0
  for word in string.gmatch(job, '[^ ]+') do
    n = n + 1
    if n == 1 then f.id = word
    elseif n == 2 then f.producer = word
    elseif n == 3 then if word ~= '-' then f.deadline = word end
    elseif n == 4 then f.enqueued = word
    else
      local name, value = string.match(word, '^([^=]+)=(.*)$')
      if name == nil then return f, JOB_SHAPE end
      if JOB_NAMES[name] then f[name] = value end
    end
  end
  if n < 4 then return f, JOB_SHAPE end
  return f, nil
end

-- Reads the flat field list of an entry into a table with the defaults applied. An entry that
-- fails a check comes back with `invalid` set to the reason; its `id` and `producer` are kept
-- when they are valid, so that its producer can still be told.
local function readEntry(fields)
  local f, shape = entryFields(fields)
  -- The defaults first; a field that is there is checked (most entries leave most fields out).
  local e = { payload = f.payload, session = f.session or '', race = f.race or '', attempt = 1,
    max = DEFAULT_MAX_ATTEMPTS, enqueued = 0, tenant = f.tenant or '' }
  if isId(f.id) then e.id = f.id end
  if isId(f.producer) then e.producer = f.producer end
  local reason
  if shape ~= nil then
    reason = shape
  elseif e.id == nil then
    reason = 'id is missing or not a valid id'
  elseif e.producer == nil then
    reason = 'producer is missing or not a valid id'
  elseif type(e.payload) ~= 'string' then
    reason = 'payload is missing'
  elseif #e.session > MAX_SESSION_BYTES then
    reason = 'session is longer than ' .. MAX_SESSION_BYTES .. ' bytes'
  elseif e.race ~= '' and e.race ~= 'h' and e.race ~= 't' and e.race ~= 's' then
    reason = "race is not '', 'h', 't' or 's'"
  elseif f.tenant ~= nil and not isId(f.tenant) then
    reason = 'tenant is not a valid id'
  end
  if reason == nil and f.attempt ~= nil then e.attempt, reason = wholeNumber(f.attempt, 'attempt', 1) end
  if reason == nil then
    if f.copy ~= nil then e.copy, reason = wholeNumber(f.copy, 'copy', 1) else e.copy = e.attempt end
  end
  if reason == nil and f.max ~= nil then e.max, reason = wholeNumber(f.max, 'max', 1) end
  if reason == nil and f.deadline ~= nil then e.deadline, reason = wholeNumber(f.deadline, 'deadline', 0) end
  if reason == nil and f.enqueued ~= nil then e.enqueued, reason = wholeNumber(f.enqueued, 'enqueued', 0) end
  if reason == nil and f.ttl ~= nil then e.ttl, reason = wholeNumber(f.ttl, 'ttl', 1) end
  if reason == nil and (e.attempt > MAX_ATTEMPTS_LIMIT or e.max > MAX_ATTEMPTS_LIMIT or e.copy > MAX_ATTEMPTS_LIMIT) then
    reason = 'attempt, copy or max is above ' .. MAX_ATTEMPTS_LIMIT
  end
  if f.trace ~= nil and isTraceparent(f.trace) then e.trace = f.trace end
  e.invalid = reason
  return e
end

-- readJob for a plain job's fields: its id and producer.
local function readPlainJob(id, producer, validProducers)
  if not isId(id) then return nil, nil, '', 1, nil, 'id is missing or not a valid id', '' end
  if validProducers[producer] or isId(producer) then
    validProducers[producer] = true
    return id, producer, '', 1, nil, nil, ''
  end
  return id, nil, '', 1, nil, 'producer is missing or not a valid id', ''
end

-- Reads only what complete needs of an entry, with the checks readEntry makes of it, and returns
-- it as values, not a table (complete reads every entry it is given): the job id, the producer,
-- the race mode, the copy, the ttl (nil for the worker's), the reason when a check fails (the
-- id and producer are returned when they pass, so that the producer can still be told), and the
-- tenant ('' for none, or when it is not a valid id).
-- `validProducers` caches the producers already checked in this call: a batch mostly answers one.
local function readJob(fields, validProducers)
  if #fields == 4 and fields[1] == 'job' and fields[3] == 'payload' then
    -- The layout writeEntry gives a plain job: four words, nothing else to look for.
    local id, producer = string.match(fields[2], '^([^ ]+) ([^ ]+) [^ ]+ [^ ]+$')
    if id ~= nil then return readPlainJob(id, producer, validProducers) end
  end
  local f, shape = entryFields(fields)
  local id, producer, race, attempt, copy, ttl, tenant = f.id, f.producer, f.race, f.attempt, f.copy, f.ttl, f.tenant
  race = race or ''
  if not isId(id) then id = nil end
  if producer ~= nil and (validProducers[producer] or isId(producer)) then
    validProducers[producer] = true
  else
    producer = nil
  end
  local reason
  if shape ~= nil then
    reason = shape
  elseif id == nil then
    reason = 'id is missing or not a valid id'
  elseif producer == nil then
    reason = 'producer is missing or not a valid id'
  elseif race ~= '' and race ~= 'h' and race ~= 't' and race ~= 's' then
    reason = "race is not '', 'h', 't' or 's'"
  elseif tenant ~= nil and not isId(tenant) then
    reason = 'tenant is not a valid id'
  end
  local attemptNo, copyNo, ttlMs = 1, nil, nil
  if reason == nil and attempt ~= nil then attemptNo, reason = wholeNumber(attempt, 'attempt', 1) end
  if reason == nil then
    if copy ~= nil then copyNo, reason = wholeNumber(copy, 'copy', 1) else copyNo = attemptNo end
  end
  if reason == nil and ttl ~= nil then ttlMs, reason = wholeNumber(ttl, 'ttl', 1) end
  if reason == nil and (attemptNo > MAX_ATTEMPTS_LIMIT or copyNo > MAX_ATTEMPTS_LIMIT) then
    reason = 'attempt, copy or max is above ' .. MAX_ATTEMPTS_LIMIT
  end
  if reason ~= nil or tenant == nil then tenant = '' end
  return id, producer, race, copyNo, ttlMs, reason, tenant
end

-- Adds an entry to a stream and returns its id. Every argument is text (as the scripts receive
-- it); deadline and ttl may be '' for none, tenant '' (or nil) for none. Fields equal to their
-- defaults are left out. Every word of `job` is checked by the caller (ids, numbers) or here (a
-- trace that is not a traceparent is dropped), so that no value can add a word of its own.
local function writeEntry(stream, id, payload, producer, deadline, enqueued, session, attempt, copy, max, race, ttl, tenant, trace)
  if deadline == '' then deadline = '-' end
  local job = id .. ' ' .. producer .. ' ' .. deadline .. ' ' .. enqueued
  if attempt ~= '1' or copy ~= '1' or max ~= DEFAULT_MAX_TEXT or race ~= '' or ttl ~= ''
      or (tenant ~= nil and tenant ~= '') or (trace ~= nil and trace ~= '') then
    local words = { job }
    if attempt ~= '1' then words[#words + 1] = 'attempt=' .. attempt end
    if copy ~= attempt then words[#words + 1] = 'copy=' .. copy end
    if max ~= DEFAULT_MAX_TEXT then words[#words + 1] = 'max=' .. max end
    if race ~= '' then words[#words + 1] = 'race=' .. race end
    if ttl ~= '' then words[#words + 1] = 'ttl=' .. ttl end
    if tenant ~= nil and tenant ~= '' then words[#words + 1] = 'tenant=' .. tenant end
    if trace ~= nil and trace ~= '' and isTraceparent(trace) then words[#words + 1] = 'trace=' .. trace end
    job = table.concat(words, ' ')
  end
  if session ~= '' then
    return redis.call('XADD', stream, '*', 'job', job, 'payload', payload, 'session', session)
  end
  return redis.call('XADD', stream, '*', 'job', job, 'payload', payload)
end

-- Writes an entry read by readEntry (with its attempt possibly raised) to another stream.
local function rewriteEntry(stream, e)
  return writeEntry(stream, e.id, e.payload, e.producer, e.deadline and string.format('%d', e.deadline) or '',
    string.format('%d', e.enqueued), e.session, tostring(e.attempt), tostring(e.copy), tostring(e.max), e.race,
    e.ttl and string.format('%d', e.ttl) or '', e.tenant, e.trace)
end
