--[[
  claim: decide, just before a worker starts copies of racing or tied jobs, which ones still need
  running: none whose job already has a result (another copy won); for a tied pair, only the copy
  that claims it first, unless the worker holding the claim is no longer alive (its copy was
  rescued and must run).

  KEYS[1] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[2..] for each job i, in order: hy:{P}:res:<jobId> (STRING the job's result, when a copy
            won), then hy:{P}:claim:<jobId>:<copy> (STRING workerId that started this tied pair,
            PX; used when the job's race is 't')

  ARGV[1] claim TTL (ms)
  ARGV[2] workerId
  ARGV[3..] for each job i, in order: its race ('h' | 't')

  Every argument and key type is checked before the first write.
  Returns one value per job: 1 to run it, 0 to skip it.
]]
--!include lib/wire.lua
local aliveKey = KEYS[1]
local ttl, worker = tonumber(ARGV[1]), ARGV[2]
local n = #ARGV - 2

--!include lib/check.lua

if ttl == nil or ttl < 1 then badArgument('claim', 'claim TTL is not a positive number') end
if not isId(worker) then badArgument('claim', 'worker id is not a valid id') end
if #KEYS ~= 1 + 2 * n then badArgument('claim', #KEYS .. ' keys given for ' .. n .. ' jobs') end
expectType(aliveKey, 'zset')
if n > 0 then requireCommands('claim', KEYS[3], { 'SET' }) end
for i = 1, n do
  local race = ARGV[2 + i]
  if race ~= 'h' and race ~= 't' then badArgument('claim', "race is not 'h' or 't'") end
  if race == 't' then expectType(KEYS[1 + 2 * i], 'string') end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, n do
  local race, claimKey = ARGV[2 + i], KEYS[1 + 2 * i]
  local run = redis.call('EXISTS', KEYS[2 * i]) == 0
  if run and race == 't' then
    if not redis.call('SET', claimKey, worker, 'NX', 'PX', ttl) then
      local holder = redis.call('GET', claimKey)
      local lease = holder and redis.call('ZSCORE', aliveKey, holder)
      if holder == worker or not lease or tonumber(lease) < now then
        redis.call('SET', claimKey, worker, 'PX', ttl)
      else
        run = false
      end
    end
  end
  out[#out + 1] = run and 1 or 0
end
return out
