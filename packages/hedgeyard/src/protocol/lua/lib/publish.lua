--[[
  lib/publish.lua: how a script sends a message (a producer's results, a worker's cancels). PUBLISH
  on a single server. On a Redis Cluster, PUBLISH reaches every node of the cluster; there the
  scripts are loaded in a second form, made by scripts/build-lua.mjs with the line below reading
  'SPUBLISH' (sharded pub/sub, Redis 7.0), so that a message goes to the nodes of the pool's slot
  only. Every channel carries the pool's {P} tag: it is in the slot of the script's keys.
]]
local PUBLISH_COMMAND = 'PUBLISH'
local function publishTo(channel, message) redis.call(PUBLISH_COMMAND, channel, message) end

-- Messages gathered per producer (results, pushes) to send one message each, last in a script:
-- adds `item` to the list of `producer` in `lists`, keeping the order producers first appear.
local function addFor(lists, order, producer, item)
  local list = lists[producer]
  if list == nil then
    list = {}
    lists[producer] = list
    order[#order + 1] = producer
  end
  list[#list + 1] = item
end
