--[[
  lib/dead.lua: moving an entry to the dead letters, shared by complete and rescue. Needs
  lib/wire.lua, lib/keys.lua and lib/entry.lua, and `deadKey`, `deadCap` and `resultTtl` defined
  by the including script.
]]

-- The envelope of a failed copy, made with cjson so that no field can change its shape.
local function failureEnvelope(w, copy, code, message)
  return cjson.encode({ ok = false, workerId = w, copy = copy,
    error = { code = code, name = ERROR_NAME, message = message } })
end

-- Appends an entry (its fields as they were, after reason, worker and entry id) to the dead
-- letters and, when its job and producer are known, answers the producer with DEAD_LETTERED: the
-- job's one result, or for a copy of a racing job that copy's failure (another copy may still win).
-- `publish(producer, line)` sends a results line. Returns nothing; writes only.
local function deadLetter(w, entryId, fields, e, reason, publish)
  local args = { 'XADD', deadKey, 'MAXLEN', '~', deadCap, '*', 'reason', reason, 'worker', w, 'entry', entryId }
  for i = 1, #fields do args[#args + 1] = fields[i] end
  redis.call(unpack(args))
  if e.id == nil or e.producer == nil then return end
  local copy = e.copy or 1
  local envelope = failureEnvelope(w, copy, 'DEAD_LETTERED', reason)
  local ttl = e.ttl or resultTtl
  if e.race ~= '' and e.invalid == nil then
    redis.call('SET', copyResultKeyOf(e.id, copy), envelope, 'PX', ttl)
    publish(e.producer, e.id .. ' ' .. envelope)
  elseif redis.call('SET', resultKeyOf(e.id), envelope, 'NX', 'PX', ttl) then
    publish(e.producer, e.id .. ' ' .. envelope)
  end
end
