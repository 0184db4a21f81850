--[[
  placement/ready.lua: a worker's score in `ready`, its utilisation: the jobs it holds (queued and
  running, its score in `load`) over its concurrency, in millionths (READY_SCALE). Below 1,000,000
  the worker has a free slot; from there on, the score is 1,000,000 plus its queued jobs per slot
  in millionths. So the lowest score is a worker with a free slot first, then the least queued
  work relative to the worker's size, and a worker of concurrency 8 takes 8 jobs for each one a
  worker of concurrency 1 takes.
  The score is a whole number: Redis keeps a small ZSET (up to zset-max-listpack-entries members,
  128 by default) as a listpack, where a whole score is stored as an integer and a fraction as
  text that every walk over the set parses again. Equal fractions of load over concurrency give
  the same score (the division is correctly rounded, then floored), so workers of different sizes
  tie exactly and ties are broken at random as before; fractions closer than a millionth may tie
  too, which moves nothing a caller can see. Shared by every script that writes a score in
  `ready`: register, heartbeat, complete, cancel and, through placement/pool.lua, dispatch, rescue and
  retry-dead.
]]

local READY_SCALE = 1000000

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
  return math.floor(load * READY_SCALE / concurrency)
end
