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

  The gcra* functions work on any list of limiters: lib/tenant.lua gives each tenant of a class
  its own, with the class's numbers.
]]

-- The limiters that the fields `f` of a limits hash `key` define, or nil and what is wrong with
-- them (`fix` says how to mend it).
local function readLimiters(f, key, fix)
  local list = {}
  for _, name in ipairs({ 'rate', 'cost' }) do
    if f[name] ~= nil or f[name .. '_period'] ~= nil then
      local limit, period = positiveInteger(f[name]), positiveInteger(f[name .. '_period'])
      local burst = f[name .. '_burst'] == nil and 1 or positiveInteger(f[name .. '_burst'])
      if limit == nil or period == nil or burst == nil then
        return nil, key .. ': ' .. name .. ', ' .. name .. '_period and ' .. name ..
          '_burst must be positive whole numbers (fix them with `' .. fix .. '`)'
      end
      list[#list + 1] = { name = name, t = period / limit, burst = burst, tat = now, refused = 0 }
    end
  end
  return list
end

local function limiterNames(list)
  local names = {}
  for i, l in ipairs(list) do names[i] = l.name end
  return names
end

-- Starts each limiter from its stored TAT (`tats`, an HMGET reply in the order of the list, or nil
-- for none).
local function startLimiters(list, tats)
  for i, l in ipairs(list) do
    -- A TAT that is not a number (written by someone else) counts as none: the limiter is idle.
    local tat = tats and tonumber(tats[i])
    if tat == nil or tat ~= tat then tat = now end
    l.tat = math.max(tat, now)
    -- Units refused in this call so far: later refusals are told to come back after them, so that
    -- jobs refused together do not all come back at the same moment.
    l.refused = 0
  end
end

local function unitsOf(l, cost)
  if l.name == 'rate' then return 1 end
  return cost
end

-- How many ms too early a copy of a job costing `cost` units comes (0 when it fits now).
local function gcraOver(list, cost)
  local over = 0
  for _, l in ipairs(list) do
    local units = unitsOf(l, cost)
    local o = l.tat + units * l.t - now - math.max(l.burst, units) * l.t
    if o > over then over = o end
  end
  return over
end

-- Records a refused copy; returns how far behind the refusals before it in this call it must
-- come back (ms).
local function gcraRefuse(list, cost)
  local stagger = 0
  for _, l in ipairs(list) do
    local behind = l.refused * l.t
    if behind > stagger then stagger = behind end
    l.refused = l.refused + unitsOf(l, cost)
  end
  return stagger
end

local function gcraTake(list, cost)
  for _, l in ipairs(list) do l.tat = l.tat + unitsOf(l, cost) * l.t end
end

local function gcraRefund(list, cost)
  for _, l in ipairs(list) do l.tat = math.max(now, l.tat - unitsOf(l, cost) * l.t) end
end

-- Writes the limiters' TATs to `key`, which expires once every limiter is idle again.
local function gcraSave(list, key)
  local args, latest = { 'HSET', key }, now
  for _, l in ipairs(list) do
    args[#args + 1] = l.name
    args[#args + 1] = string.format('%.3f', l.tat)
    if l.tat > latest then latest = l.tat end
  end
  redis.call(unpack(args))
  redis.call('PEXPIRE', key, math.ceil(latest - now) + 1000)
end

local limiters
do
  local raw = redis.call('HGETALL', limitsKey)
  local f = {}
  for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
  local bad
  limiters, bad = readLimiters(f, limitsKey, 'hedgeyard limits set')
  if bad then badArgument('dispatch', bad) end
end
local hasQuota = #limiters > 0
if hasQuota then
  expectType(quotaKey, 'hash')
  requireCommands('dispatch', quotaKey, { 'HSET', 'PEXPIRE' })
  startLimiters(limiters, redis.call('HMGET', quotaKey, unpack(limiterNames(limiters))))
end

-- 0 when a copy of a job costing `cost` units may go now (the units are then taken), else the ms
-- to wait before it may.
local function quotaTake(cost)
  if not hasQuota then return 0 end
  local over = gcraOver(limiters, cost)
  if over > 0 then return math.max(1, math.ceil(over + gcraRefuse(limiters, cost))) end
  gcraTake(limiters, cost)
  return 0
end

-- Gives back the units of a copy that was taken but found no worker.
local function quotaRefund(cost)
  if hasQuota then gcraRefund(limiters, cost) end
end

-- Writes the limiters' state; the key expires once every limiter is idle again.
local function quotaSave()
  if hasQuota then gcraSave(limiters, quotaKey) end
end
