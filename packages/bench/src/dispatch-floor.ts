/**
 * The floor of suite d: the least a least-loaded placement of a run of plain jobs has to do in
 * Redis under Switchyard's key layout (docs/redis-keys.md), as a script called with the same
 * arguments as the library's dispatch script. Per call: `TIME`, the k least-loaded workers of
 * `load` (one `ZRANGE ... WITHSCORES`), their leases (one `ZMSCORE` of `alive`), then one `XADD`
 * per job to its worker's stream, and the new loads in one `ZADD`.
 *
 * It does less than any dispatcher may: it reads no capacity, keeps no `ready` set, breaks no
 * tie at random, does not skip a worker whose lease it read, and deals the jobs round-robin over
 * the window (so 64 jobs reach 8 workers of a pool of 8, and 64 of a pool of 1,000, as the real
 * script's do). So its cost is a floor: if its own cost(1000) / cost(8) is above the bar, no exact
 * least-loaded dispatch over per-worker streams can meet the bar on this machine.
 *
 * It takes one run of plain jobs ('p' record, see the dispatch script's header) and answers as
 * the dispatch script does: the worker of each job, then 0.
 */
export const DISPATCH_FLOOR_LUA = `
local loadKey, aliveKey = KEYS[1], KEYS[3]
local base, producer, n = ARGV[1], ARGV[4], tonumber(ARGV[6])
if ARGV[7] ~= 'p' or tonumber(ARGV[10]) ~= n then
  return redis.error_reply('dispatch floor: takes one run of plain jobs')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[8])
local window = redis.call('ZRANGE', loadKey, 0, n - 1, 'WITHSCORES')
local ws, loads, added = {}, {}, {}
for i = 1, #window, 2 do
  ws[#ws + 1] = window[i]
  loads[#loads + 1] = tonumber(window[i + 1])
  added[#added + 1] = 0
end
redis.call('ZMSCORE', aliveKey, unpack(ws))
local out, o = {}, 11
for j = 1, n do
  local i = (j - 1) % #ws + 1
  added[i] = added[i] + 1
  redis.call('XADD', base .. 'q:' .. ws[i], '*', 'id', ARGV[o], 'payload', ARGV[o + 1],
    'producer', producer, 'deadline', deadline, 'enqueued', now)
  out[#out + 1] = ws[i]
  out[#out + 1] = 0
  o = o + 2
end
local args = {}
for i = 1, #ws do
  args[#args + 1] = loads[i] + added[i]
  args[#args + 1] = ws[i]
end
redis.call('ZADD', loadKey, unpack(args))
return out
`
