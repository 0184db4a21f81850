--[[
  lib/check.lua: the checks every script makes of its arguments and of what it reads, before its
  first write. Needs lib/wire.lua before it.
]]

-- Whether s can be an id that becomes part of a key or a results line.
local function isId(s)
  return type(s) == 'string' and #s > 0 and #s <= MAX_ID_BYTES and not string.find(s, '[%c%s]')
end

-- A whole number written in decimal digits, at least min; nil and a reason otherwise.
local function wholeNumber(v, name, min)
  if type(v) ~= 'string' or #v == 0 or #v > MAX_NUMBER_DIGITS or string.find(v, '[^0-9]') then
    return nil, name .. ' is not a whole number'
  end
  local n = tonumber(v)
  if n < min then return nil, name .. ' is below ' .. min end
  return n
end

-- Fails the call, before its first write, when a key holds another type than the script needs
-- ('none' is always accepted: the script creates the key). The reply starts with WRONGTYPE so that
-- the caller classifies it as Redis's own WRONGTYPE.
local function expectType(key, wanted)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'none' and t ~= wanted then
    error(redis.error_reply('WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a ' .. wanted))
  end
end

-- Fails the call for an argument its caller should never send (checked before the first write).
local function badArgument(script, message)
  error(redis.error_reply('ERR ' .. script .. ': ' .. message))
end
