--[[
  lib/quota.lua: a pool's quotas, enforced by dispatch in Redis time with GCRA (the generic cell
  rate algorithm): each limiter keeps one number, its theoretical arrival time (TAT, ms), in
  hy:{P}:quota. A limiter of `limit` units per `period` ms spaces units T = period / limit ms apart
  and lets `burst` units through at once from idle: a job costing n units passes when
  max(TAT, now) + n*T - now <= max(burst, n) * T, and then moves TAT there. Two limiters: `rate`
  (1 unit per copy dispatched) and `cost` (the job's cost: tokens, say).
  Needs lib/wire.lua and lib/check.lua, and `limitsKey`, `quotaKey` and `now` defined before it.

  hy:{P}:limits (HASH, written by `hedgeyard limits set` / setPoolLimits):
    rate, rate_period, rate_burst    requests per period (ms), burst (default 1)
    cost, cost_period, cost_burst    cost units per period (ms), burst (default 1)
  A field that is not a positive whole number fails the call, naming it: a quota nobody can read
  must not turn into no quota.
]]

local limiters = {}
do
  local raw = redis.call('HGETALL', limitsKey)
  local f = {}
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  for _, name in ipairs({ 'rate', 'cost' }) do
    if f[name] ~= nil or f[name .. '_period'] ~= nil then
      local limit, period = positiveInteger(f[name]), positiveInteger(f[name .. '_period'])
      local burst = f[name .. '_burst'] == nil and 1 or positiveInteger(f[name .. '_burst'])
      if limit == nil or period == nil or burst == nil then
        badArgument('dispatch', limitsKey .. ': ' .. name .. ', ' .. name .. '_period and ' .. name ..
          '_burst must be positive whole numbers (fix them with `hedgeyard limits set`)')
      end
      limiters[#limiters + 1] = { name = name, t = period / limit, burst = burst, tat = nil }
    end
  end
end
local hasQuota = #limiters > 0
if hasQuota then
  expectType(quotaKey, 'hash')
  requireCommands('dispatch', quotaKey, { 'HSET', 'PEXPIRE' })
  local names = {}
  for i, l in ipairs(limiters) do names[i] = l.name end
  local tats = redis.call('HMGET', quotaKey, unpack(names))
  for i, l in ipairs(limiters) do
    -- A TAT that is not a number (written by someone else) counts as none: the limiter is idle.
    local tat = tonumber(tats[i])
    if tat == nil or tat ~= tat then tat = now end
    l.tat = math.max(tat, now)
    -- Units refused in this call so far: later refusals are told to come back after them, so that
    -- jobs refused together do not all come back at the same moment.
    l.refused = 0
  end
end

-- 0 when a copy of a job costing `cost` units may go now (the units are then taken), else the ms
-- to wait before it may.
local function quotaTake(cost)
  if not hasQuota then return 0 end
  local wait = 0
  for _, l in ipairs(limiters) do
    local units = l.name == 'rate' and 1 or cost
    local over = l.tat + units * l.t - now - math.max(l.burst, units) * l.t
    if over > wait then wait = over end
  end
  if wait > 0 then
    local stagger = 0
    for _, l in ipairs(limiters) do
      local units = l.name == 'rate' and 1 or cost
      local behind = l.refused * l.t
      if behind > stagger then stagger = behind end
      l.refused = l.refused + units
    end
    return math.max(1, math.ceil(wait + stagger))
  end
  for _, l in ipairs(limiters) do
    l.tat = l.tat + (l.name == 'rate' and 1 or cost) * l.t
  end
  return 0
end

-- Gives back the units of a copy that was taken but found no worker.
local function quotaRefund(cost)
  if not hasQuota then return end
  for _, l in ipairs(limiters) do
    l.tat = math.max(now, l.tat - (l.name == 'rate' and 1 or cost) * l.t)
  end
end

-- Writes the limiters' state; the key expires once every limiter is idle again.
local function quotaSave()
  if not hasQuota then return end
  local args, latest = { 'HSET', quotaKey }, now
  for _, l in ipairs(limiters) do
    args[#args + 1] = l.name
    args[#args + 1] = string.format('%.3f', l.tat)
    if l.tat > latest then latest = l.tat end
  end
  redis.call(unpack(args))
  redis.call('PEXPIRE', quotaKey, math.ceil(latest - now) + 1000)
end
