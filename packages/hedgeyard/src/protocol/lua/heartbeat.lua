--[[
  heartbeat: renew the leases of workers, heal their share of the pool's bookkeeping, and make
  them dispatch candidates again when they are active and have room (dispatch drops a candidate
  whose lease it found expired).

  A worker whose breaker is open (complete.lua) stays out of `ready` until its breaker_until; then
  its breaker half-opens ('half'), and it is a candidate while it has no job (one probe job).
  A worker cooling down (its hash's cooling_until, ms of Redis time, still ahead: complete.lua set
  it after an upstream 429) is kept out of `ready`; once it has passed, the field is removed and
  the worker is a candidate again.

  Healing: a worker's load is set to the length of its stream, which is what it is by the
  invariant (entries are deleted when they complete), so a load that was deleted, edited or
  left too high by a failure heals within one heartbeat. A pool ZSET of another type (written by
  someone else) is deleted and rebuilt by the heartbeats of all workers; so is a dead-letter key
  that is not a stream (it holds no dead letter).

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> utilisation (load / concurrency, placement/ready.lua),
                                 the dispatch candidates
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[4] -> hy:{P}:dead    STREAM dead letters (only its type is checked)
  KEYS[5..] for each worker i, in order: hy:{P}:w:<workerId> (HASH state, capacity,
            concurrency, cooling_until, breaker, breaker_until), then
            hy:{P}:q:<workerId> (STREAM its jobs)

  ARGV[1] lease (ms)
  ARGV[2..] worker ids, in the order of their keys

  Returns { Redis time in ms, then one status per worker: 'OK'; 'DRAINING' (someone asked it to
  drain, e.g. `hedgeyard drain`); 'GONE' (its hash no longer exists: it was removed from the
  pool and must register again); or 'BROKEN' (its hash or stream holds another type: it must
  register again, which replaces them) }.
]]
--!include lib/wire.lua
local loadKey, readyKey, aliveKey, deadKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local leaseMs = tonumber(ARGV[1])
local n = #ARGV - 1
--!include lib/check.lua
--!include ../../placement/ready.lua

if leaseMs == nil or leaseMs < 1 then badArgument('heartbeat', 'lease is not a positive number') end
if #KEYS ~= 4 + 2 * n then badArgument('heartbeat', #KEYS .. ' keys given for ' .. n .. ' workers') end

-- Reads and checks.
local heal = {}
for _, key in ipairs({ loadKey, readyKey, aliveKey, deadKey }) do
  local kind = redis.call('TYPE', key)['ok']
  local wanted = key == deadKey and 'stream' or 'zset'
  if kind ~= 'none' and kind ~= wanted then heal[#heal + 1] = key end
end
local workers = {}
for i = 1, n do
  local w, hash, q = ARGV[1 + i], KEYS[3 + 2 * i], KEYS[4 + 2 * i]
  if not isId(w) then badArgument('heartbeat', 'worker id is not a valid id') end
  local state = { id = w }
  local hashType, qType = redis.call('TYPE', hash)['ok'], redis.call('TYPE', q)['ok']
  if hashType == 'none' then
    state.status = 'GONE'
  elseif hashType ~= 'hash' or (qType ~= 'stream' and qType ~= 'none') then
    state.status = 'BROKEN'
  else
    local info = redis.call('HMGET', hash, 'state', 'capacity', 'cooling_until', 'breaker', 'breaker_until',
      'concurrency')
    state.breaker = info[4]
    state.breakerUntil = tonumber(info[5]) or 0
    state.status = info[1] == 'draining' and 'DRAINING' or 'OK'
    state.isActive = info[1] == 'active'
    state.capacity = tonumber(info[2])
    state.coolingUntil = info[3] ~= false and (tonumber(info[3]) or 0) or nil
    state.load = qType == 'stream' and redis.call('XLEN', q) or 0
    state.concurrency = concurrencyOf(info[6])
  end
  workers[i] = state
end
requireCommands('heartbeat', loadKey, { 'ZADD', 'ZREM', 'DEL' })
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Writes.
if #heal > 0 then redis.call('DEL', unpack(heal)) end
local out = { now }
for i, state in ipairs(workers) do
  local w = state.id
  if state.load ~= nil then
    redis.call('ZADD', aliveKey, now + leaseMs, w)
    redis.call('ZADD', loadKey, state.load, w)
    local isCooling = state.coolingUntil ~= nil and state.coolingUntil > now
    if state.coolingUntil ~= nil and not isCooling then redis.call('HDEL', KEYS[3 + 2 * i], 'cooling_until') end
    local hash = KEYS[3 + 2 * i]
    if state.breaker == 'open' and state.breakerUntil <= now then
      redis.call('HSET', hash, 'breaker', 'half')
      state.breaker = 'half'
    end
    local room = state.capacity
    if state.breaker == 'half' and room ~= nil then room = math.min(room, 1) end
    if state.breaker == 'open' then room = 0 end
    if state.isActive and room ~= nil and state.load < room and not isCooling then
      redis.call('ZADD', readyKey, readyScore(state.load, state.concurrency), w)
    else
      redis.call('ZREM', readyKey, w)
    end
  end
  out[#out + 1] = state.status
end
return out
