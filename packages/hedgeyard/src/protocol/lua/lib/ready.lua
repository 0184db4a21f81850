--[[
  lib/ready.lua: a worker's score in `ready`, its utilisation: the jobs it holds (queued and
  running, its score in `load`) over its concurrency. Below 1 the worker has a free slot; from 1
  on, the score is 1 plus the jobs it has queued per slot. So the lowest score is a worker with a
  free slot first, then the least queued work relative to the worker's size, and a worker of
  concurrency 8 takes 8 jobs for each one a worker of concurrency 1 takes. Equal fractions are
  equal doubles (division rounds correctly), so workers of different sizes tie exactly, and ties
  are broken at random as before. Shared by every script that writes a score in `ready`:
  register, heartbeat, complete, cancel and, through lib/pool.lua, dispatch, rescue and
  retry-dead.
]]

-- A worker's concurrency as its hash holds it (register writes it), or 1 when it is not a whole
-- number from 1 to 999,999,999 (a hash written by someone else): such a worker is scored as the
-- smallest a worker can be, and is never given more than its capacity anyway.
local function concurrencyOf(v)
  if type(v) ~= 'string' or #v == 0 or #v > 9 or string.find(v, '[^0-9]') then return 1 end
  local n = tonumber(v)
  if n < 1 then return 1 end
  return n
end

-- The `ready` score of a worker holding `load` jobs with `concurrency` slots.
local function readyScore(load, concurrency)
  return load / concurrency
end
