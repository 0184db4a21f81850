--[[
  claim: decide, just before a worker starts copies of hedged or tied jobs, which ones still need
  running: none whose job already has a result (another copy won); for tied jobs, only the first
  copy to get here (it claims the job).

  KEYS[1] -> sy:{P}:load    routes the call to the pool's slot; not otherwise used

  ARGV[1] base 'sy:{P}:'; derived keys, same {P} tag:
            sy:{P}:res:<jobId>     STRING the job's result, when a copy won
            sy:{P}:claim:<jobId>   STRING workerId of the tied copy that started, SET NX PX
  ARGV[2] claim TTL (ms)
  ARGV[3] workerId
  ARGV[4..] pairs: jobId, race ('h' | 't')

  Returns one value per job: 1 to run it, 0 to skip it.
]]
local base, ttl, worker = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for i = 4, #ARGV, 2 do
  local jobId, race = ARGV[i], ARGV[i + 1]
  local run = redis.call('EXISTS', base .. 'res:' .. jobId) == 0
  if run and race == 't' then
    run = redis.call('SET', base .. 'claim:' .. jobId, worker, 'NX', 'PX', ttl) ~= false
  end
  out[#out + 1] = run and 1 or 0
end
return out
