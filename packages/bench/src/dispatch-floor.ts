/**
 * The floor of suite d: the bare writes of a least-loaded placement of a run of plain jobs under
 * Hedgeyard's key layout (docs/redis-keys.md), as a script called with the same arguments as the
 * library's dispatch script. Per call: `TIME`, the k least-loaded workers of `load` (one
 * `ZRANGE ... WITHSCORES`), then one `XADD` per job to its worker's stream, and the new loads in
 * one `ZADD`.
 *
 * It does less than the library's script: it reads no lease and no capacity, keeps no `ready`
 * set, breaks no tie at random, and deals the jobs round-robin over the workers it read (so 64
 * jobs reach 8 workers of a pool of 8, and 64 of a pool of 1,000, as the library's do). What it
 * shows is how much of the cost's growth from 8 to 1,000 workers comes with the writes alone.
 * Its ratio is no bound on another dispatcher's: work that costs the same at every size brings a
 * ratio down.
 *
 * It takes one run of plain jobs ('p' record, see the dispatch script's header) and answers as
 * the dispatch script does: one string, the worker of each job joined by ','.
 */
export const DISPATCH_FLOOR_LUA = `
local loadKey = KEYS[1]
local base, producer, n = ARGV[1], ARGV[4], tonumber(ARGV[8])
if ARGV[9] ~= 'p' or tonumber(ARGV[13]) ~= n or ARGV[15] == nil then
  return redis.error_reply('dispatch floor: takes one run of plain jobs')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = now + tonumber(ARGV[10])
local window = redis.call('ZRANGE', loadKey, 0, n - 1, 'WITHSCORES')
local ws, loads, added = {}, {}, {}
for i = 1, #window, 2 do
  ws[#ws + 1] = window[i]
  loads[#loads + 1] = tonumber(window[i + 1])
  added[#added + 1] = 0
end
local ids, payloads, at, pt = ARGV[14], ARGV[15], 1, 1
local out = {}
for j = 1, n do
  local comma = string.find(ids, ',', at, true) or #ids + 1
  local newline = string.find(payloads, '\\n', pt, true) or #payloads + 1
  local i = (j - 1) % #ws + 1
  added[i] = added[i] + 1
  redis.call('XADD', base .. 'q:' .. ws[i], '*', 'job', string.sub(ids, at, comma - 1) .. ' ' .. producer .. ' ' .. deadline .. ' ' .. now,
    'payload', string.sub(payloads, pt, newline - 1))
  out[j] = ws[i]
  at, pt = comma + 1, newline + 1
end
local args = {}
for i = 1, #ws do
  args[#args + 1] = loads[i] + added[i]
  args[#args + 1] = ws[i]
end
redis.call('ZADD', loadKey, unpack(args))
return { table.concat(out, ',') }
`
