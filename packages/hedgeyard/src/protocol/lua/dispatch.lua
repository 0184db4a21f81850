--[[
  dispatch: pick the least utilised live worker with room for each job of a batch (a free slot
  first, then the least queued work per slot), reserve it and queue the job on its stream, all in
  one step.

  KEYS[1] -> hy:{P}:load    ZSET workerId -> load (queued + running)
  KEYS[2] -> hy:{P}:ready   ZSET workerId -> utilisation (load / concurrency, placement/ready.lua), only
            active workers below capacity
  KEYS[3] -> hy:{P}:alive   ZSET workerId -> lease deadline (ms, Redis time)
  KEYS[4] -> hy:{P}:limits  HASH the pool's quotas (lib/quota.lua), read
  KEYS[5] -> hy:{P}:quota   HASH the quotas' state (each limiter's TAT, ms), written when a quota is set
  KEYS[6] -> hy:{P}:sent:<producerId>  HASH the producer's receipts: field <call number mod
            RECEIPT_SLOTS> -> '<call number> <this call's reply as JSON>', PX receipt TTL
  KEYS[7..] for each 'f' record, in order: hy:{P}:aff:<session> (STRING session -> workerId, PX
            affinity TTL) when it has a session, then hy:{P}:copies:<jobId> (HASH workerId ->
            entryId of each copy) when its race is not '', then, when it has a tenant (limitKey),
            hy:{P}:limits:<class> (HASH the class's limits, read), hy:{P}:quota:<class>:<tenant>
            (HASH the tenant's TATs) and hy:{P}:inflight:<tenant> (ZSET jobId -> deadline) of
            lib/tenant.lua

  ARGV[1] base 'hy:{P}:'; keys learned inside (the chosen worker's), same {P} tag:
            hy:{P}:w:<workerId>   HASH (capacity, breaker, concurrency; host of a hedge or
                                  retry copy's candidates and excluded workers)
            hy:{P}:q:<workerId>   STREAM the job is added to
  ARGV[2] affinity TTL (ms)
  ARGV[3] random seed (ties are broken at random; the seed comes from the caller)
  ARGV[4] producer id
  ARGV[5] result TTL (ms) the job's worker keeps its result for (entry field 'ttl'), or '' to
          leave it to the worker (its resultTtlMs)
  ARGV[6] call number: the producer's count of its dispatch calls, for the receipt
  ARGV[7] receipt TTL (ms): how long the producer may need to read the receipt back
  ARGV[8] number of jobs n; then the jobs as records, in order, each of one of two kinds:
            'f', then 13 fields: jobId, session ('' for none), payload (JSON), timeoutMs, attempt,
              maxAttempts, excluded workers ('' or ids joined by ','),
              race: '' (a plain job), 'h' (copies may race: a failure does not end the job, the
              first success wins), 't' (tied: the first copy to start claims the job) or 's'
              (streamed: copies race to the first chunk, which claims the job),
              copies: how many copies to queue now, each on a different worker (2 for tied),
              cost: the units the job takes from the pool's cost budget (1 and up),
              limitKey: the tenant ('' for none; else as an id), limitClass: its class ('' with
              no tenant; else 1-MAX_CLASS_BYTES letters, digits and _ . -),
              trace: the copy's W3C traceparent ('' for none; else 00-<32 hex>-<16 hex>-<2 hex>)
            'p', timeoutMs, maxAttempts, cost, k, ids, payloads: a run of k plain jobs (no
              session, first attempt, nothing excluded, one copy, race '') that share a timeout,
              an attempt limit and a cost; ids holds their job ids joined by ',', payloads their
              payloads joined by '\n' (JSON has no raw line break; a payload with one goes in an
              'f' record). Seven arguments per run instead of thirteen per job: each argument
              costs the caller and Redis some work to write and parse, and bulk submits are almost
              all plain jobs.

  Entries are written by lib/entry.lua (fields equal to their defaults left out).

  Every argument and the type of every key in KEYS is checked before the first write; a bad one
  fails the call with 'ERR dispatch: ...' or 'WRONGTYPE ...' and changes nothing. A worker whose
  stream holds another type leaves the candidates and its job goes to another worker: one broken worker does not stop the pool.

  When the pool has quotas (KEYS[4]), each job takes its units before it is placed, and gives them
  back if no worker takes it; a job over a quota is not placed. A tenant's job must also fit its
  class's limits (lib/tenant.lua): first the tenant's cap on jobs in flight, then the pool's and
  the tenant's quotas together; a placed job joins the tenant's jobs in flight. Jobs without a
  tenant read none of it.

  Last, the call writes its receipt: its number and its reply, in the producer's slot for it. A
  producer whose connection dropped before the reply came reads the slot once reconnected: its own
  number there means the call ran (and the reply is there), anything else that it did not, for the
  receipt and the jobs are written by one script, kept or lost together.

  Returns a flat array, record by record. For an 'f' record, two values: the chosen workerId or
  'SATURATED' (live workers, none with room) or 'NO_WORKERS' (no live worker), then 1 when the
  session's binding was used (an affinity hit) and 0 otherwise; or 'RATE_LIMITED' (over the pool's
  quota) or 'TENANT_LIMITED' (over its tenant's, and for longer than the pool's), then the ms to
  wait before it may go (jobs refused in one call are told to come back one after the other); or
  'TENANT_FULL' (its tenant has as many jobs in flight as its class allows), then that cap; or
  'BAD_LIMITS' (its class's limits cannot be read), then why, naming the key and field. For a 'p'
  run, one string: its k outcomes in order, joined by ',', each the chosen workerId (a plain job
  has no session: no affinity hit), 'SATURATED', 'NO_WORKERS' or 'RATE_LIMITED <ms>'. One value per
  run rather than two per job: each costs Redis and the caller's client some work to write and read.
]]
--!include lib/wire.lua
local loadKey, readyKey, aliveKey, limitsKey, quotaKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local base = ARGV[1]
local producer = ARGV[4]
local resultTtl = ARGV[5]
local receiptKey, callNumber, receiptTtl = KEYS[6], ARGV[6], ARGV[7]
local n = tonumber(ARGV[8])

--!include lib/check.lua
--!include lib/keys.lua
--!include lib/entry.lua

-- Checks, before anything is written.
local affinityTtl = tonumber(ARGV[2])
if affinityTtl == nil or affinityTtl < 1 then badArgument('dispatch', 'affinity TTL is not a positive number') end
if tonumber(ARGV[3]) == nil then badArgument('dispatch', 'seed is not a number') end
if not isId(producer) then badArgument('dispatch', 'producer id is not a valid id') end
if resultTtl ~= '' then
  if positiveInteger(resultTtl) == nil then badArgument('dispatch', 'result TTL is not a positive whole number') end
  resultTtl = string.format('%d', positiveInteger(resultTtl))
end
if n == nil or n < 0 then badArgument('dispatch', 'job count is not a number') end
local _, badCall = wholeNumber(callNumber, 'call number', 0)
if badCall ~= nil then badArgument('dispatch', badCall) end
if positiveInteger(receiptTtl) == nil then badArgument('dispatch', 'receipt TTL is not a positive whole number') end
-- The receipt is written under this name: it must be the one the script builds for the producer.
if receiptKey ~= sentKeyOf(producer) then badArgument('dispatch', 'the receipt key does not match the producer id') end
local function checkJobId(jobId)
  if not isId(jobId) then badArgument('dispatch', 'job id ' .. tostring(jobId) .. ' is not a valid id') end
end
local function checkCost(cost)
  local c, bad = wholeNumber(cost, 'cost', 1)
  if bad == nil and c > MAX_JOB_COST then bad = 'cost is above ' .. MAX_JOB_COST end
  if bad ~= nil then badArgument('dispatch', bad) end
end
-- The k job ids and the k payloads of a 'p' run, split from its two arguments.
local function splitRun(idText, payloadText, k)
  if type(idText) ~= 'string' or type(payloadText) ~= 'string' then
    badArgument('dispatch', 'a run of jobs is cut short')
  end
  local ids, payloads, i, p = {}, {}, 1, 1
  for j = 1, k - 1 do
    local comma = string.find(idText, ',', i, true)
    local newline = string.find(payloadText, '\n', p, true)
    if comma == nil or newline == nil then badArgument('dispatch', 'a run holds fewer jobs than its count') end
    ids[j] = string.sub(idText, i, comma - 1)
    payloads[j] = string.sub(payloadText, p, newline - 1)
    i, p = comma + 1, newline + 1
  end
  ids[k] = string.sub(idText, i)
  payloads[k] = string.sub(payloadText, p)
  if string.find(payloads[k], '\n', 1, true) then badArgument('dispatch', 'a run holds more jobs than its count') end
  return ids, payloads
end
local function checkLimits(timeoutMs, maxAttempts)
  local _, bad = wholeNumber(timeoutMs, 'timeoutMs', 1)
  local max, badMax = wholeNumber(maxAttempts, 'maxAttempts', 1)
  if bad == nil and badMax == nil and max > MAX_ATTEMPTS_LIMIT then badMax = 'maxAttempts is above ' .. MAX_ATTEMPTS_LIMIT end
  if (bad or badMax) ~= nil then badArgument('dispatch', bad or badMax) end
end
-- The first per-job key of each kind, for the ACL checks below.
local firstJobKey, firstTenantKey = nil, nil
-- The ids and payloads of each 'p' run, by the index of its record in ARGV: split once, here.
local runs = {}
do
  local o, jobs, keyCount = 9, 0, 6
  while jobs < n do
    local kind = ARGV[o]
    if kind == 'p' then
      local k = tonumber(ARGV[o + 4])
      if k == nil or k < 1 then badArgument('dispatch', 'run length is not a positive number') end
      checkLimits(ARGV[o + 1], ARGV[o + 2])
      checkCost(ARGV[o + 3])
      local ids, payloads = splitRun(ARGV[o + 5], ARGV[o + 6], k)
      for i = 1, k do checkJobId(ids[i]) end
      runs[o] = { ids, payloads }
      jobs, o = jobs + k, o + 7
    elseif kind == 'f' then
      local session, attempt, race, copies = ARGV[o + 2], ARGV[o + 5], ARGV[o + 8], tonumber(ARGV[o + 9])
      local tenant, class = ARGV[o + 11], ARGV[o + 12]
      checkJobId(ARGV[o + 1])
      checkLimits(ARGV[o + 4], ARGV[o + 6])
      if type(ARGV[o + 3]) ~= 'string' or type(ARGV[o + 7]) ~= 'string' or type(tenant) ~= 'string'
          or type(class) ~= 'string' or type(ARGV[o + 13]) ~= 'string' then
        badArgument('dispatch', 'a job record is cut short')
      end
      if ARGV[o + 13] ~= '' and not isTraceparent(ARGV[o + 13]) then
        badArgument('dispatch', 'trace is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)')
      end
      if #session > MAX_SESSION_BYTES or string.find(session, '[%c{}]') then badArgument('dispatch', 'session is not valid') end
      local a, bad = wholeNumber(attempt, 'attempt', 1)
      if bad ~= nil or a > MAX_ATTEMPTS_LIMIT then badArgument('dispatch', 'attempt is not a whole number from 1 to ' .. MAX_ATTEMPTS_LIMIT) end
      if race ~= '' and race ~= 'h' and race ~= 't' and race ~= 's' then badArgument('dispatch', "race is not '', 'h', 't' or 's'") end
      if copies == nil or copies < 1 or copies > 5 then badArgument('dispatch', 'copies is not from 1 to 5') end
      checkCost(ARGV[o + 10])
      if session ~= '' then
        keyCount = keyCount + 1
        if KEYS[keyCount] == nil then badArgument('dispatch', 'an affinity key is missing from KEYS') end
        expectType(KEYS[keyCount], 'string')
        firstJobKey = firstJobKey or KEYS[keyCount]
      end
      if race ~= '' then
        keyCount = keyCount + 1
        if KEYS[keyCount] == nil then badArgument('dispatch', 'a copies key is missing from KEYS') end
        expectType(KEYS[keyCount], 'hash')
        firstJobKey = firstJobKey or KEYS[keyCount]
      end
      if tenant ~= '' then
        if not isId(tenant) then badArgument('dispatch', 'limitKey ' .. tostring(tenant) .. ' is not a valid id') end
        if #class > MAX_CLASS_BYTES or not string.find(class, '^[%w_.%-]+$') then
          badArgument('dispatch', 'limitClass ' .. class .. ' is not a valid class name')
        end
        -- The script writes the tenant's state under these names: they must be the ones it builds.
        if KEYS[keyCount + 1] ~= classLimitsKeyOf(class) or KEYS[keyCount + 2] ~= tenantQuotaKeyOf(class, tenant)
            or KEYS[keyCount + 3] ~= inflightKeyOf(tenant) then
          badArgument('dispatch', 'the keys of tenant ' .. tenant .. ' do not match its limitKey and limitClass')
        end
        firstTenantKey = firstTenantKey or keyCount + 1
        keyCount = keyCount + 3
      elseif class ~= '' then
        badArgument('dispatch', 'limitClass is given without a limitKey')
      end
      jobs, o = jobs + 1, o + 14
    else
      badArgument('dispatch', 'unknown record kind ' .. tostring(kind) .. ' at argument ' .. o)
    end
  end
  if jobs ~= n then badArgument('dispatch', 'the records hold ' .. jobs .. ' jobs, not ' .. n) end
  if #KEYS ~= keyCount then badArgument('dispatch', #KEYS .. ' keys given, the records need ' .. keyCount) end
end
-- `ready` and `alive` are read before each job's first write, and fail the call there when they
-- hold another type; `load` is first written (after a job's entry), so it is checked here.
expectType(loadKey, 'zset')
expectType(limitsKey, 'hash')
expectType(receiptKey, 'hash')
requireCommands('dispatch', receiptKey, { 'HSET', 'PEXPIRE' })
requireCommands('dispatch', loadKey, { 'ZINCRBY', 'ZADD', 'ZREM' })
requireCommands('dispatch', queueKeyOf(''), { 'XADD' })
if firstJobKey then requireCommands('dispatch', firstJobKey, { 'SET', 'PEXPIRE', 'HSET' }) end
if firstTenantKey then
  -- Reads too: lib/tenant.lua takes a failed read of a tenant's key for a key of another type.
  requireCommands('dispatch', KEYS[firstTenantKey], { 'HGETALL' })
  requireCommands('dispatch', KEYS[firstTenantKey + 1], { 'HMGET', 'HSET', 'PEXPIRE', 'DEL' })
  requireCommands('dispatch', KEYS[firstTenantKey + 2],
    { 'ZREMRANGEBYSCORE', 'ZCARD', 'ZSCORE', 'ZADD', 'ZRANGE', 'PEXPIRE', 'DEL' })
end

math.randomseed(tonumber(ARGV[3]))
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

--!include lib/quota.lua

--!include lib/tenant.lua

--!include ../../placement/pool.lua

--!include ../../placement/place.lua

local out = {}

-- A binary heap of workers in three arrays (score, random key, worker id, by slot; no table per
-- entry): the lowest score on top and, among equal scores, the lowest key, so a key drawn at
-- random for each entry breaks ties at random. Moves the entry at slot i down to its place.
local function siftDown(hs, hk, hw, size, i)
  local s, k, w = hs[i], hk[i], hw[i]
  while true do
    local c = 2 * i
    if c > size then break end
    if c < size and (hs[c + 1] < hs[c] or (hs[c + 1] == hs[c] and hk[c + 1] < hk[c])) then c = c + 1 end
    if hs[c] > s or (hs[c] == s and hk[c] > k) then break end
    hs[i], hk[i], hw[i] = hs[c], hk[c], hw[c]
    i = c
  end
  hs[i], hk[i], hw[i] = s, k, w
end

-- Places a run of k plain jobs as k single picks would (least utilised, random among ties, never
-- past capacity), with a few commands per worker instead of five per job. Each pass reads the
-- r + 1 least utilised workers of `ready` (r jobs left) and writes each chosen worker's load once:
--   * When the lowest score is below that of the last one read (the limit), no unseen worker can
--     tie with the window's lower scores: it fills the workers below the limit in memory, each job
--     to the lowest utilisation (a heap; random among ties), a worker's score rising by one job
--     over its concurrency per job, until the lowest reaches the limit; then reads again for the
--     jobs left.
--   * Otherwise more than r workers share the lowest score: r distinct ones among all of them get
--     one job each, at random (by rank, without reading the whole level when it is large).
-- Each job is written as it is placed, by `emit(w)` (its entry first, so a worker whose stream
-- refuses it gets no load for it); the loads follow once per pass. Returns, when no live worker
-- has room for the rest (fewer than k placed), the status for those: 'SATURATED' or 'NO_WORKERS'.
local function placeRun(k, emit)
  local placed = 0
  while placed < k do
    local r = k - placed
    local window = redis.call('ZRANGE', readyKey, 0, r, 'WITHSCORES')
    if #window == 0 then return noWorkerStatus() end
    local ws, scores = {}, {}
    for i = 1, #window, 2 do
      ws[#ws + 1] = window[i]
      scores[#scores + 1] = tonumber(window[i + 1])
    end
    local limit = math.huge
    if #ws > r then limit = scores[r + 1] end
    -- loads: each chosen worker's load before this pass, when this pass read it.
    local added, order, loads = {}, {}, {}
    local function give(w)
      if not emit(w) then return false end
      placed = placed + 1
      if added[w] == nil then
        added[w] = 0
        order[#order + 1] = w
      end
      added[w] = added[w] + 1
      return true
    end

    if scores[1] < limit then
      local below = {}
      for i = 1, math.min(r, #ws) do
        if scores[i] < limit then below[#below + 1] = i end
      end
      local live = {}
      checkAlive(ws)
      for _, i in ipairs(below) do
        if isAlive(ws[i]) then live[#live + 1] = i else redis.call('ZREM', readyKey, ws[i]) end
      end
      if #live > 0 then
        local hs, hk, hw, size = {}, {}, {}, #live
        for j, i in ipairs(live) do
          hs[j], hk[j], hw[j] = scores[i], math.random(), ws[i]
        end
        for j = math.floor(size / 2), 1, -1 do siftDown(hs, hk, hw, size, j) end
        local held = redis.call('ZMSCORE', loadKey, unpack(hw))
        for j, w in ipairs(hw) do loads[w] = tonumber(held[j]) or 0 end
        -- The top worker takes the next job and sinks to its new score, or leaves the heap when
        -- it is full, its stream refused the job, or its score reached the limit.
        while placed < k and size > 0 do
          local w = hw[1]
          local score = limit
          if give(w) then
            local info = infoOf(w)
            local load = loads[w] + added[w]
            if info.capacity and load < info.capacity then score = readyScore(load, info.concurrency) end
          end
          if score < limit then
            hs[1], hk[1] = score, math.random()
          else
            hs[1], hk[1], hw[1] = hs[size], hk[size], hw[size]
            hs[size], hk[size], hw[size] = nil, nil, nil
            size = size - 1
          end
          if size > 1 then siftDown(hs, hk, hw, size, 1) end
        end
      end
    else
      -- More than r workers tie at the lowest score: ranks 0 .. ties - 1 of `ready`.
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
          -- A broken worker left `ready`, which shifts the ranks too.
          if not give(w) then break end
        else
          -- Removing it shifts the ranks: place what was chosen so far, then read again.
          redis.call('ZREM', readyKey, w)
          break
        end
      end
      if #order > 0 then
        local held = redis.call('ZMSCORE', loadKey, unpack(order))
        for i, w in ipairs(order) do loads[w] = tonumber(held[i]) or 0 end
      end
    end
    -- The chosen workers' loads were read with one ZMSCORE and are written with one ZADD (the
    -- script runs alone, so this is a ZINCRBY of each in two commands instead of one per worker);
    -- then `ready` follows with one ZADD and one ZREM. A pass that met only dead workers chose none.
    if #order > 0 then
      local newLoads, stay, full = {}, {}, {}
      for _, w in ipairs(order) do
        local load = loads[w] + added[w]
        newLoads[#newLoads + 1] = load
        newLoads[#newLoads + 1] = w
        if isFull(w, load) then
          full[#full + 1] = w
        else
          stay[#stay + 1] = readyScore(load, infoOf(w).concurrency)
          stay[#stay + 1] = w
        end
      end
      redis.call('ZADD', loadKey, unpack(newLoads))
      if #stay > 0 then redis.call('ZADD', readyKey, unpack(stay)) end
      if #full > 0 then redis.call('ZREM', readyKey, unpack(full)) end
    end
  end
  return nil
end

local function isPlaced(w) return w ~= 'SATURATED' and w ~= 'NO_WORKERS' end

-- Places the job of the 'f' record at ARGV[o].
local function placeRecord(o, affKey, copiesKey)
  return dispatchOne(ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], tonumber(ARGV[o + 4]), ARGV[o + 5], ARGV[o + 6],
    excludedSet(ARGV[o + 7]), ARGV[o + 8], tonumber(ARGV[o + 9]), affKey, copiesKey, ARGV[o + 11], ARGV[o + 13])
end

local o, keyAt, done = 9, 6, 0
while done < n do
  local kind = ARGV[o]
  if kind == 'p' then
    local timeoutMs, maxAttempts, cost, k = tonumber(ARGV[o + 1]), ARGV[o + 2], tonumber(ARGV[o + 3]), tonumber(ARGV[o + 4])
    local ids, payloads = runs[o][1], runs[o][2]
    o = o + 7
    -- The first `admitted` jobs of the run fit the quotas; the others wait (all of them: the run's
    -- jobs cost the same, so once one is refused, so is each after it).
    local admitted, waits = k, {}
    if hasQuota then
      admitted = 0
      for _ = 1, k do
        local wait = quotaTake(cost)
        if wait == 0 and #waits == 0 then admitted = admitted + 1 else waits[#waits + 1] = wait end
      end
    end
    -- Writes the next job of the run to w; false when w's stream refused it.
    local outcomes, emitted = {}, 0
    local function emit(w)
      local j = emitted + 1
      if not addEntry(w, ids[j], '', payloads[j], timeoutMs, '1', maxAttempts, '', nil) then return false end
      emitted = j
      outcomes[j] = w
      return true
    end
    -- A lone job takes the single pick: for one job the pass's tables cost more than they save.
    -- `none` is why the jobs placeRun could not place have nowhere to go (no candidate is left).
    local none = nil
    if admitted > 1 then none = placeRun(admitted, emit) end
    for i = emitted + 1, admitted do
      if none then
        outcomes[i] = none
        quotaRefund(cost)
      else
        local w = dispatchOne(ids[i], '', payloads[i], timeoutMs, '1', maxAttempts, nil, '', 1, nil, nil)
        outcomes[i] = w
        if not isPlaced(w) then quotaRefund(cost) end
      end
    end
    for _, wait in ipairs(waits) do outcomes[#outcomes + 1] = 'RATE_LIMITED ' .. string.format('%d', wait) end
    out[#out + 1] = table.concat(outcomes, ',')
    done = done + k
  else
    local session, race, tenant = ARGV[o + 2], ARGV[o + 8], ARGV[o + 11]
    local affKey, copiesKey = nil, nil
    if session ~= '' then keyAt = keyAt + 1; affKey = KEYS[keyAt] end
    if race ~= '' then keyAt = keyAt + 1; copiesKey = KEYS[keyAt] end
    local cost = tonumber(ARGV[o + 10])
    if tenant == '' then
      local wait = quotaTake(cost)
      if wait > 0 then
        out[#out + 1] = 'RATE_LIMITED'
        out[#out + 1] = wait
      else
        local w, hit = placeRecord(o, affKey, copiesKey)
        out[#out + 1] = w
        out[#out + 1] = hit
        if not isPlaced(w) then quotaRefund(cost) end
      end
    else
      local classKey, quotaKeyOfTenant, inflightKey = KEYS[keyAt + 1], KEYS[keyAt + 2], KEYS[keyAt + 3]
      keyAt = keyAt + 3
      local T = tenancy()
      local cls = T.classOf(ARGV[o + 12], classKey)
      if cls.bad then
        out[#out + 1] = 'BAD_LIMITS'
        out[#out + 1] = cls.bad
      else
        local jobId = ARGV[o + 1]
        local inflight, hasRoom, needsSlot = nil, true, false
        if cls.cap then
          inflight = T.inflightOf(inflightKey)
          hasRoom, needsSlot = T.inflightRoom(inflight, cls.cap, jobId, ARGV[o + 5] ~= '1')
        end
        if not hasRoom then
          out[#out + 1] = 'TENANT_FULL'
          out[#out + 1] = cls.cap
        else
          local q = T.quotaOf(cls, quotaKeyOfTenant)
          local wait, isTenants = T.quotaTake(cost, q)
          if wait > 0 then
            out[#out + 1] = isTenants and 'TENANT_LIMITED' or 'RATE_LIMITED'
            out[#out + 1] = wait
          else
            local w, hit = placeRecord(o, affKey, copiesKey)
            out[#out + 1] = w
            out[#out + 1] = hit
            if not isPlaced(w) then
              T.quotaRefund(cost, q)
            elseif needsSlot then
              T.inflightAdd(inflight, jobId, string.format('%d', now + tonumber(ARGV[o + 4])))
            end
          end
        end
      end
    end
    o = o + 14
    done = done + 1
  end
end
quotaSave()
if tenants then tenants.save() end
-- The numbers of `out` are whole (ms, counts, hits): JSON writes them as Redis replies them.
redis.call('HSET', receiptKey, tonumber(callNumber) % RECEIPT_SLOTS, callNumber .. ' ' .. (#out == 0 and '[]' or cjson.encode(out)))
redis.call('PEXPIRE', receiptKey, receiptTtl)
return out
