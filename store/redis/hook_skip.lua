-- hook_skip.lua: while no tenant has a webhook, the hooks group has nothing
-- to deliver: move it to the end of the shards' events streams (and, when
-- asked, acknowledge what it holds) instead of reading every event only to
-- drop it, which cost as much Redis as the loader's reads. A tenant that
-- sets a webhook is in the index before its PUT is answered
-- (Store.PutTenantDoc), so every event after that is read and delivered.
--
-- KEYS[1] the index of tenants with a webhook of the first stream's shard
--         (wa:{sNN}:hookt: a set holding '' once built, and each such
--         tenant's id; every shard's holds the same, written in one
--         transaction on one server)
-- KEYS[2…] events streams to move (wa:{sNN}:events): on a Cluster the one
--         of KEYS[1]'s shard; on one server all of them; none only looks
--         whether any tenant has a webhook
-- ARGV[1] the hooks group
-- ARGV[2] most pending entries acknowledged per stream (0: leave them)
--
-- Returns 1 when it skipped, 0 when some tenant has a webhook (read as
-- usual), -1 when the index is not built yet (build it, then call again).
if redis.call('SISMEMBER', KEYS[1], '') == 0 then return -1 end
if redis.call('SCARD', KEYS[1]) ~= 1 then return 0 end
local most = tonumber(ARGV[2])
for i = 2, #KEYS do
  -- A stream or group not made yet has nothing to skip.
  if pcall(redis.call, 'XGROUP', 'SETID', KEYS[i], ARGV[1], '$') and most > 0 then
    local p = redis.call('XPENDING', KEYS[i], ARGV[1], '-', '+', most)
    if #p > 0 then
      local ids = {}
      for j, e in ipairs(p) do ids[j] = e[1] end
      redis.call('XACK', KEYS[i], ARGV[1], unpack(ids))
    end
  end
end
return 1
