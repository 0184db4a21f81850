--[[
  correct-cost: give back to (or take from) a cost budget the difference between what a job was
  charged at dispatch (its submit's `cost`) and what its worker reported it cost (ctx.reportCost),
  so that a budget of tokens per minute counts the tokens really spent. The limiter's theoretical
  arrival time moves by the difference times its spacing, never before now.

  KEYS[1] -> hy:{P}:limits   HASH the pool's quotas (cost, cost_period), read
  KEYS[2] -> hy:{P}:quota    HASH the pool quotas' state (field cost: its TAT, ms)
  KEYS[3..] for the job's tenant, when it has one: hy:{P}:limits:<class> (HASH its class's
            limits), then hy:{P}:quota:<class>:<key> (HASH its quota state)

  ARGV[1] the difference in units: reported minus charged (a whole number, negative to give back)

  Every key's type and the limits' numbers are checked before the first write; a limiter without a
  cost budget, or without state yet, is left alone.
  Returns how many budgets were corrected (0 to 2).
]]
--!include lib/wire.lua
--!include lib/check.lua

if #KEYS ~= 2 and #KEYS ~= 4 then badArgument('correct-cost', 'takes 2 or 4 keys') end
local delta = ARGV[1]
if type(delta) ~= 'string' or not string.find(delta, '^%-?%d+$') or #delta > MAX_NUMBER_DIGITS + 1 then
  badArgument('correct-cost', 'the difference is not a whole number')
end
delta = tonumber(delta)

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- 1. Reads: each budget's spacing and state.
local moves = {}
for i = 1, #KEYS, 2 do
  local limitsKey, quotaKey = KEYS[i], KEYS[i + 1]
  expectType(limitsKey, 'hash')
  expectType(quotaKey, 'hash')
  local limits = redis.call('HMGET', limitsKey, 'cost', 'cost_period')
  local limit, period = positiveInteger(limits[1]), positiveInteger(limits[2])
  local tat = tonumber(redis.call('HGET', quotaKey, 'cost'))
  if limit and period and tat and tat == tat then
    moves[#moves + 1] = { quotaKey, math.max(now, tat + delta * period / limit) }
  end
end
if #moves > 0 then requireCommands('correct-cost', moves[1][1], { 'HSET' }) end

-- 2. Writes.
for _, m in ipairs(moves) do redis.call('HSET', m[1], 'cost', string.format('%.3f', m[2])) end
return #moves
