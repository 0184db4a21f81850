--[[
  lib/clock.lua: Redis time in ms, read once per call and only when a script needs it (a worker's
  cooldown in complete, a job's deadline in chunk).
]]
local nowMs = nil
local function redisNow()
  if nowMs == nil then
    local t = redis.call('TIME')
    nowMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  end
  return nowMs
end
