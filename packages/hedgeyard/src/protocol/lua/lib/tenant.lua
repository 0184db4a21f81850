--[[
  lib/tenant.lua: the limits of tenants, enforced by dispatch on top of the pool's quotas. A
  tenant's job (submit option limitKey) names a class (limitClass); the class's limits apply to
  each tenant of the class on its own:

  hy:{P}:limits:<class> (HASH, written by `hedgeyard limits set --key-class` / setPoolLimits):
    rate, rate_period, rate_burst,    GCRA limiters as the pool's (lib/quota.lua), each tenant
    cost, cost_period, cost_burst     with its own TATs in hy:{P}:quota:<class>:<tenant> (HASH,
                                      expires once idle)
    concurrency                       the most jobs one tenant may have queued or running:
                                      hy:{P}:inflight:<tenant> (ZSET jobId -> deadline, ms of
                                      Redis time) holds them
  A class without the hash has no limits: its jobs cost one HGETALL per class per call.

  Jobs in flight leave the ZSET when complete elects their result, and when cancel or rescue ends
  them; members past their deadline are pruned before a tenant is counted (a job whose end was
  never recorded holds its slot until its deadline, not for ever), and, when a tenant is at its
  cap, members whose deadline no dispatch could have given (further off than MAX_TIMEOUT_MS).

  Hostile data: a class hash nobody can read (another type, a field that is not a positive whole
  number) fails that class's jobs with BAD_LIMITS naming the key and field, not the call: other
  classes' jobs go on. A tenant's quota or in-flight key of another type counts as empty and is
  replaced when next written: one tenant's broken key stops no one.

  Each class is read once per call, each tenant's state once per call and written once, by
  save(). The functions are made by tenancy() on the first tenant job of a call: a call without
  one pays for one closure, not for these. Needs lib/quota.lua and `now`.
]]

local tenants = nil
local function tenancy()
  if tenants then return tenants end
  local classes, tenantQuotas, quotaOrder, inflights, inflightOrder = {}, {}, {}, {}, {}

  -- The limits of a class, read once per call: { limiters, cap } or { bad = why it is unreadable }.
  local function classOf(class, key)
    local c = classes[class]
    if c then return c end
    local fix = 'hedgeyard limits set --key-class ' .. class
    local ok, raw = pcall(redis.call, 'HGETALL', key)
    if not ok then
      c = { bad = key .. ' is not a hash (fix it with `' .. fix .. '`)' }
    else
      local f = {}
      for i = 1, #raw, 2 do f[raw[i]] = raw[i + 1] end
      local list, bad = readLimiters(f, key, fix)
      local cap = nil
      if bad == nil and f.concurrency ~= nil then
        cap = positiveInteger(f.concurrency)
        if cap == nil then bad = key .. ': concurrency must be a positive whole number (fix it with `' .. fix .. '`)' end
      end
      if bad then c = { bad = bad } else c = { limiters = list, cap = cap } end
    end
    classes[class] = c
    return c
  end

  -- A tenant's limiters under its class (nil when the class has neither rate nor cost), read once
  -- per call. `key` is hy:{P}:quota:<class>:<tenant> (the class has no ':', so the key names one
  -- pair).
  local function tenantQuotaOf(cls, key)
    if #cls.limiters == 0 then return nil end
    local q = tenantQuotas[key]
    if q then return q end
    q = { key = key, limiters = {}, isDirty = false, isBroken = false }
    for i, l in ipairs(cls.limiters) do q.limiters[i] = { name = l.name, t = l.t, burst = l.burst } end
    local ok, tats = pcall(redis.call, 'HMGET', key, unpack(limiterNames(q.limiters)))
    if not ok then
      q.isBroken = true
      tats = nil
    end
    startLimiters(q.limiters, tats)
    tenantQuotas[key] = q
    quotaOrder[#quotaOrder + 1] = q
    return q
  end

  -- 0 when a copy of a tenant's job costing `cost` units fits both the pool's quota and the tenant's
  -- (`q`, nil for none): the units are then taken from both; else the ms to wait, the longer of the
  -- two waits (a limiter set that had room records no refusal), and whether it is the tenant's.
  local function tenantQuotaTake(cost, q)
    local poolOver = hasQuota and gcraOver(limiters, cost) or 0
    local tenantOver = q and gcraOver(q.limiters, cost) or 0
    if poolOver > 0 or tenantOver > 0 then
      local poolWait, tenantWait = 0, 0
      if poolOver > 0 then poolWait = poolOver + gcraRefuse(limiters, cost) end
      if tenantOver > 0 then tenantWait = tenantOver + gcraRefuse(q.limiters, cost) end
      return math.max(1, math.ceil(math.max(poolWait, tenantWait))), tenantWait > poolWait
    end
    if hasQuota then gcraTake(limiters, cost) end
    if q then
      gcraTake(q.limiters, cost)
      q.isDirty = true
    end
    return 0, false
  end

  local function tenantQuotaRefund(cost, q)
    quotaRefund(cost)
    if q then gcraRefund(q.limiters, cost) end
  end

  -- A tenant's jobs in flight, read once per call (after pruning those past their deadline).
  local function inflightOf(key)
    local s = inflights[key]
    if s then return s end
    s = { key = key, count = 0, has = {}, adds = {}, isBroken = false, isSwept = false }
    local ok = pcall(redis.call, 'ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now))
    if ok then s.count = redis.call('ZCARD', key) else s.isBroken = true end
    inflights[key] = s
    inflightOrder[#inflightOrder + 1] = s
    return s
  end

  -- Whether the tenant (`s`) has room under `cap` for job `jobId`, and whether the job needs a slot
  -- of its own: an extra copy (hedge, retry) of a job in flight shares its job's slot.
  local function inflightRoom(s, cap, jobId, isExtraCopy)
    if s.has[jobId] then return true, false end
    if isExtraCopy and not s.isBroken and redis.call('ZSCORE', s.key, jobId) then
      s.has[jobId] = true
      return true, false
    end
    if s.count < cap then return true, true end
    if not s.isSwept and not s.isBroken then
      s.isSwept = true
      local gone = redis.call('ZREMRANGEBYSCORE', s.key, string.format('(%d', now + MAX_TIMEOUT_MS), '+inf')
      s.count = s.count - gone
      if s.count < cap then return true, true end
    end
    return false, false
  end

  -- Counts a placed job in its tenant's jobs in flight until `deadline` (ms, as text).
  local function inflightAdd(s, jobId, deadline)
    s.has[jobId] = true
    s.count = s.count + 1
    s.adds[#s.adds + 1] = deadline
    s.adds[#s.adds + 1] = jobId
  end

  -- Writes what this call changed: each tenant's TATs, and the jobs it put in flight (the ZSET
  -- expires with the latest deadline it holds).
  local function tenantSave()
    for _, q in ipairs(quotaOrder) do
      if q.isDirty then
        if q.isBroken then redis.call('DEL', q.key) end
        gcraSave(q.limiters, q.key)
      end
    end
    for _, s in ipairs(inflightOrder) do
      if #s.adds > 0 then
        if s.isBroken then redis.call('DEL', s.key) end
        redis.call('ZADD', s.key, unpack(s.adds))
        local latest = tonumber(redis.call('ZRANGE', s.key, -1, -1, 'WITHSCORES')[2]) or now
        redis.call('PEXPIRE', s.key, math.ceil(math.min(math.max(latest - now, 0), MAX_TIMEOUT_MS)) + 1000)
      end
    end
  end

  tenants = { classOf = classOf, quotaOf = tenantQuotaOf, quotaTake = tenantQuotaTake,
    quotaRefund = tenantQuotaRefund, inflightOf = inflightOf, inflightRoom = inflightRoom,
    inflightAdd = inflightAdd, save = tenantSave }
  return tenants
end
