--[[
  lib/check.lua: the checks every script makes of its arguments and of what it reads, before its
  first write. Needs lib/wire.lua before it.
]]

-- Whether s can be an id that becomes part of a key or a results line: 1 to MAX_ID_BYTES
-- letters, digits and '_ . : -' (as pool and worker names; job and producer ids are of them).
local function isId(s)
  return type(s) == 'string' and #s <= MAX_ID_BYTES and string.find(s, '^[%w_.:%-]+$') ~= nil
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

-- A positive whole number as a script argument, or nil: cheaper than wholeNumber, for the numbers a
-- caller sends once per call (not for entry fields, which the TypeScript decoder reads the same way).
local function positiveInteger(v)
  local n = tonumber(v)
  if n == nil or n < 1 or n % 1 ~= 0 or n >= 2 ^ 53 then return nil end
  return n
end

-- Whether s is a stream entry id Redis accepts as it is written: <ms>-<seq>, each part below 2^64
-- (at most 19 digits here).
local function isStreamId(s)
  local ms, seq = string.match(s, '^(%d+)%-(%d+)$')
  return ms ~= nil and #ms <= 19 and #seq <= 19
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

-- Fails the call with NOPERM, before its first write, when the user may not run one of `commands`
-- on `key` (a key or, for PUBLISH, a channel). Inside a script a refused command fails where it
-- runs, with 'ERR The user executing the script can't run...': after the script's first writes,
-- and with nothing a caller can act on. Servers before 7.0 have no redis.acl_check_cmd: the check
-- is skipped there.
local function requireCommands(script, key, commands)
  if redis.acl_check_cmd == nil then return end
  for _, command in ipairs(commands) do
    -- A command with a subcommand is given as a pair { 'XGROUP', 'CREATE' }: the key follows it.
    local allowed
    if type(command) == 'table' then
      allowed = redis.acl_check_cmd(command[1], command[2], key)
      command = command[1] .. ' ' .. command[2]
    else
      allowed = redis.acl_check_cmd(command, key)
    end
    if not allowed then
      error(redis.error_reply('NOPERM ' .. script .. ': this user may not run ' .. command .. ' on ' .. key))
    end
  end
end
