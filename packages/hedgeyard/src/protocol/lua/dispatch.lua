--[[
  dispatch: pick the least-loaded live worker with room for each job of a batch, reserve it and
  queue the job on its stream, all in one step.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load (queued + running)
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> load, only active workers below capacity
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)

  ARGV[1] base 'hy:{P}:'; derived keys, same {P} tag:
            hy:{P}:w:<workerId>   HASH (capacity)
            hy:{P}:q:<workerId>   STREAM the job is added to
            hy:{P}:aff:<session>  STRING session -> workerId, PX affinity TTL
            hy:{P}:copies:<jobId> HASH workerId -> entryId of each copy of a hedged job
  ARGV[2] affinity TTL (ms)
  ARGV[3] random seed (ties are broken at random; the seed comes from the caller)
  ARGV[4] producer id
  ARGV[5] result TTL (ms) the job's worker keeps its result for (entry field 'ttl'), or '' to
          leave it to the worker (its resultTtlMs)
  ARGV[6] number of jobs n; then the jobs as records, in order, each of one of two kinds:
            'f', then 9 fields: jobId, session ('' for none), payload (JSON), timeoutMs, attempt,
              maxAttempts, excluded workers ('' or ids joined by ','),
              race: '' (a plain job), 'h' (copies may race: a failure does not end the job, the
              first success wins) or 't' (tied: the first copy to start claims the job),
              copies: how many copies to queue now, each on a different worker (2 for tied)
            'p', timeoutMs, maxAttempts, k, then k pairs jobId, payload: a run of k plain jobs
              (no session, first attempt, nothing excluded, one copy, race '') that share a
              timeout and an attempt limit. Two arguments per job instead of nine: each argument
              costs the caller and Redis some work to write and parse, and bulk submits are
              almost all plain jobs.

  Entry fields: a field equal to its default is left out, because fewer fields per entry is less
  work for every XREADGROUP that reads it (and rescue, the worker's codec and the dead-letter
  tools read a missing field as that default): `session` and `race` when empty, `attempt` when 1,
  `max` when 3 (the Dispatcher's default maxAttempts), `ttl` when ARGV[5] is '', and `copy`
  always, because it equals `attempt` when a copy is dispatched (rescue writes it when it raises
  the attempt).

  Returns a flat array of 2n values: for each job, the chosen workerId or 'SATURATED' (live
  workers, none with room) or 'NO_WORKERS' (no live worker), then 1 when the session's binding was
  used (an affinity hit) and 0 otherwise.
]]
local loadKey, readyKey, aliveKey = KEYS[1], KEYS[2], KEYS[3]
local base = ARGV[1]
local affinityTtl = tonumber(ARGV[2])
local producer = ARGV[4]
local resultTtl = ARGV[5]
local n = tonumber(ARGV[6])

math.randomseed(tonumber(ARGV[3]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

--!include lib/pool.lua

local out = {}

-- An entry's times go in as text, made once per call (the deadline once per timeout): a number
-- passed to redis.call is turned into text on every call (Redis 7.0: snprintf '%.17g').
local nowText = string.format('%d', now)
local deadlines = {}
local function deadlineText(timeoutMs)
  local text = deadlines[timeoutMs]
  if text == nil then
    text = string.format('%d', now + timeoutMs)
    deadlines[timeoutMs] = text
  end
  return text
end

-- Queues one copy on target's stream (the slot is already reserved); returns the entry id.
local function addEntry(target, jobId, session, payload, timeoutMs, attempt, maxAttempts, race)
  local entryId
  if session == '' and race == '' and attempt == '1' and maxAttempts == '3' and resultTtl == '' then
    entryId = redis.call('XADD', base .. 'q:' .. target, '*', 'id', jobId, 'payload', payload,
      'producer', producer, 'deadline', deadlineText(timeoutMs), 'enqueued', nowText)
  else
    local fields = { 'XADD', base .. 'q:' .. target, '*', 'id', jobId, 'payload', payload }
    if session ~= '' then fields[#fields + 1] = 'session'; fields[#fields + 1] = session end
    if attempt ~= '1' then fields[#fields + 1] = 'attempt'; fields[#fields + 1] = attempt end
    fields[#fields + 1] = 'producer'; fields[#fields + 1] = producer
    fields[#fields + 1] = 'deadline'; fields[#fields + 1] = deadlineText(timeoutMs)
    fields[#fields + 1] = 'enqueued'; fields[#fields + 1] = nowText
    if maxAttempts ~= '3' then fields[#fields + 1] = 'max'; fields[#fields + 1] = maxAttempts end
    if race ~= '' then fields[#fields + 1] = 'race'; fields[#fields + 1] = race end
    if resultTtl ~= '' then fields[#fields + 1] = 'ttl'; fields[#fields + 1] = resultTtl end
    entryId = redis.call(unpack(fields))
  end
  if race ~= '' then
    local copiesKey = base .. 'copies:' .. jobId
    redis.call('HSET', copiesKey, target, entryId)
    redis.call('PEXPIRE', copiesKey, timeoutMs + 60000)
  end
  return entryId
end

local function dispatchOne(jobId, session, payload, timeoutMs, attempt, maxAttempts, excluded, race, copies)
  local w, hit = nil, 0
  local affKey = nil
  if session ~= '' then
    affKey = base .. 'aff:' .. session
    local bound = redis.call('GET', affKey)
    if bound and not (excluded and excluded[bound]) and redis.call('ZSCORE', readyKey, bound) and isAlive(bound) then
      w, hit = bound, 1
    end
  end
  if w == nil then
    w = pick(excluded)
  end

  if w == nil then
    out[#out + 1] = noWorkerStatus()
    out[#out + 1] = 0
    return
  end
  -- Only the first copy binds or refreshes the session: a hedge or retry copy goes elsewhere on
  -- purpose and must not move the session away from the worker it is bound to.
  if affKey and attempt == '1' then
    if hit == 1 then
      redis.call('PEXPIRE', affKey, affinityTtl)
    else
      redis.call('SET', affKey, w, 'PX', affinityTtl)
    end
  end
  out[#out + 1] = w
  out[#out + 1] = hit
  -- Tied copies go to distinct workers in the same step; a copy that finds no room is not queued.
  local target = w
  for copy = 1, copies do
    if copy > 1 then
      excluded = excluded or {}
      excluded[target] = true
      target = pick(excluded)
      if target == nil then break end
    end
    reserve(target)
    addEntry(target, jobId, session, payload, timeoutMs, attempt, maxAttempts, race)
  end
end

-- Places a run of k plain jobs as k single picks would (least-loaded, random among ties, never
-- past capacity), with a few commands per worker instead of five per job. Each pass reads the
-- r + 1 least-loaded workers of `ready` (r jobs left) and writes each chosen worker's load once:
--   * When the lowest load is below that of the last one read, no unseen worker can tie with the
--     window's lower loads: it fills them level by level in memory (every worker at the lowest
--     load gets one job, in random order, or a random subset of them gets the last jobs; then the
--     next level) up to that load, then reads again for the jobs left.
--   * Otherwise more than r workers share the lowest load: r distinct ones among all of them get
--     one job each, at random (by rank, without reading the whole level when it is large).
-- Returns the chosen workers in job order and, when no live worker has room for the rest (fewer
-- than k placed), the status for those: 'SATURATED' or 'NO_WORKERS'.
local function placeRun(k)
  local placed = {}
  while #placed < k do
    local r = k - #placed
    local window = redis.call('ZRANGE', readyKey, 0, r, 'WITHSCORES')
    if #window == 0 then return placed, noWorkerStatus() end
    local ws, scores = {}, {}
    for i = 1, #window, 2 do
      ws[#ws + 1] = window[i]
      scores[#scores + 1] = tonumber(window[i + 1])
    end
    local limit = math.huge
    if #ws > r then limit = scores[r + 1] end
    local added, order = {}, {}
    local function give(w)
      placed[#placed + 1] = w
      if added[w] == nil then
        added[w] = 0
        order[#order + 1] = w
      end
      added[w] = added[w] + 1
    end

    if scores[1] < limit then
      checkAlive(ws)
      local level, nextIdx, current = scores[1], 1, {}
      while level < limit and #placed < k do
        while nextIdx <= r and nextIdx <= #ws and scores[nextIdx] <= level do
          local w = ws[nextIdx]
          nextIdx = nextIdx + 1
          if isAlive(w) then current[#current + 1] = w else redis.call('ZREM', readyKey, w) end
        end
        if #current == 0 then
          if nextIdx > r or nextIdx > #ws then break end
          level = scores[nextIdx]
        else
          local take = math.min(#current, k - #placed)
          -- The first `take` of a random order of the tied workers get a job (partial Fisher-Yates).
          for i = 1, take do
            local j = math.random(i, #current)
            current[i], current[j] = current[j], current[i]
            give(current[i])
          end
          local nextLevel = {}
          for i = 1, take do
            if not isFull(current[i], level + 1) then nextLevel[#nextLevel + 1] = current[i] end
          end
          for i = take + 1, #current do nextLevel[#nextLevel + 1] = current[i] end
          current = nextLevel
          level = level + 1
        end
      end
    else
      -- More than r workers tie at the lowest load: ranks 0 .. ties - 1 of `ready`.
      local ties = redis.call('ZCOUNT', readyKey, scores[1], scores[1])
      local chosen = {}
      if ties <= 4 * r then
        local level = redis.call('ZRANGE', readyKey, 0, ties - 1)
        for i = 1, r do
          local j = math.random(i, #level)
          level[i], level[j] = level[j], level[i]
          chosen[i] = level[i]
        end
      else
        local used = {}
        while #chosen < r do
          local rank = math.random(0, ties - 1)
          if not used[rank] then
            used[rank] = true
            chosen[#chosen + 1] = redis.call('ZRANGE', readyKey, rank, rank)[1]
          end
        end
      end
      checkAlive(chosen)
      for _, w in ipairs(chosen) do
        if isAlive(w) then
          give(w)
        else
          -- Removing it shifts the ranks: place what was chosen so far, then read again.
          redis.call('ZREM', readyKey, w)
          break
        end
      end
    end
    -- The chosen workers' loads are read with one ZMSCORE and written with one ZADD (the script
    -- runs alone, so this is a ZINCRBY of each in two commands instead of one per worker); then
    -- `ready` follows with one ZADD and one ZREM. A pass that met only dead workers chose none.
    if #order > 0 then
      local before = redis.call('ZMSCORE', loadKey, unpack(order))
      local loads, stay, full = {}, {}, {}
      for i, w in ipairs(order) do
        local load = (tonumber(before[i]) or 0) + added[w]
        loads[#loads + 1] = load
        loads[#loads + 1] = w
        if isFull(w, load) then
          full[#full + 1] = w
        else
          stay[#stay + 1] = load
          stay[#stay + 1] = w
        end
      end
      redis.call('ZADD', loadKey, unpack(loads))
      if #stay > 0 then redis.call('ZADD', readyKey, unpack(stay)) end
      if #full > 0 then redis.call('ZREM', readyKey, unpack(full)) end
    end
  end
  return placed, nil
end

local o = 7
while #out < 2 * n do
  local kind = ARGV[o]
  if kind == 'p' then
    local timeoutMs, maxAttempts, k = tonumber(ARGV[o + 1]), ARGV[o + 2], tonumber(ARGV[o + 3])
    o = o + 4
    -- A lone job takes the single pick: for one job the pass's tables cost more than they save.
    -- `none` is why the jobs placeRun could not place have nowhere to go (no candidate is left).
    local placed, none = {}, nil
    if k > 1 then placed, none = placeRun(k) end
    for i = 1, k do
      local w = placed[i]
      if w then
        out[#out + 1] = w
        out[#out + 1] = 0
        addEntry(w, ARGV[o], '', ARGV[o + 1], timeoutMs, '1', maxAttempts, '')
      elseif none then
        out[#out + 1] = none
        out[#out + 1] = 0
      else
        dispatchOne(ARGV[o], '', ARGV[o + 1], timeoutMs, '1', maxAttempts, nil, '', 1)
      end
      o = o + 2
    end
  elseif kind == 'f' then
    dispatchOne(ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], tonumber(ARGV[o + 4]), ARGV[o + 5], ARGV[o + 6],
      excludedSet(ARGV[o + 7]), ARGV[o + 8], tonumber(ARGV[o + 9]))
    o = o + 10
  else
    return redis.error_reply('dispatch: unknown record kind ' .. tostring(kind) .. ' at argument ' .. o)
  end
end
return out
