--[[
  claim: decide, just before a worker starts copies of racing or tied jobs, which ones still need
  running: none whose job already has a result (another copy won); for a tied pair, only the copy
  that claims it first, unless the worker holding the claim is no longer alive (its copy was
  rescued and must run); for a streamed job, none whose output stream has begun (another copy
  emitted first), and the copy that owns a begun stream is told so (it was interrupted mid-stream,
  by a restart of its worker: it cannot start again, its caller has chunks of it already).

  KEYS[1] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[2..] for each job i, in order: hy:{P}:res:<jobId> (STRING the job's result, when a copy
            won), then for race 't' hy:{P}:claim:<jobId>:<copy> (STRING workerId that started
            this tied pair, PX), for race 's' hy:{P}:out:<jobId> (STREAM the job's output), for
            race 'h' the claim key (not read)

  ARGV[1] claim TTL (ms)
  ARGV[2] workerId
  ARGV[3..] for each job i, in order: its race ('h' | 't' | 's') and its entry id

  Every argument and key type is checked before the first write.
  Returns one value per job: 1 to run it, 0 to skip it, 2 when it owns its begun output stream.
]]
--!include lib/wire.lua
local aliveKey = KEYS[1]
local ttl, worker = tonumber(ARGV[1]), ARGV[2]
local n = (#ARGV - 2) / 2

--!include lib/check.lua
--!include lib/out.lua

if ttl == nil or ttl < 1 then badArgument('claim', 'claim TTL is not a positive number') end
if not isId(worker) then badArgument('claim', 'worker id is not a valid id') end
if n % 1 ~= 0 then badArgument('claim', 'races and entry ids come in pairs') end
if #KEYS ~= 1 + 2 * n then badArgument('claim', #KEYS .. ' keys given for ' .. n .. ' jobs') end
expectType(aliveKey, 'zset')
if n > 0 then requireCommands('claim', KEYS[3], { 'SET' }) end
for i = 1, n do
  local race = ARGV[1 + 2 * i]
  if race ~= 'h' and race ~= 't' and race ~= 's' then badArgument('claim', "race is not 'h', 't' or 's'") end
  if race == 't' then expectType(KEYS[1 + 2 * i], 'string') end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for i = 1, n do
  local race, claimKey = ARGV[1 + 2 * i], KEYS[1 + 2 * i]
  local run = redis.call('EXISTS', KEYS[2 * i]) == 0
  local verdict = nil
  if run and race == 's' then
    -- A stream that has begun belongs to the copy that emitted first (a key of another type is
    -- not a stream: the copy runs, and its chunks are refused).
    local _, isStream = outUsable(claimKey)
    if isStream then
      local w, e = outOwner(claimKey)
      if w == worker and e == ARGV[2 + 2 * i] then verdict = 2 else run = false end
    end
  elseif run and race == 't' then
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
  out[#out + 1] = verdict or (run and 1 or 0)
end
return out
