-- lease.lua: take or give back a shard's lease (RenewLease renews it with
-- GETEX, no script).
--
-- KEYS[1] lease           wa:{sNN}:lease:<role>
-- KEYS[2] fence counter   wa:{sNN}:fence
-- ARGV[1] "take" | "release"
-- ARGV[2] instance (take) or the lease value held (release)
-- ARGV[3] TTL (ms)
--
-- take: when nobody holds the lease, takes it with a new fencing token and
-- returns its value "<instance>\t<token>"; false otherwise.
-- release: deletes the lease if ARGV[2] still holds it; 1 or 0.
local op = ARGV[1]
if op == 'take' then
  if redis.call('EXISTS', KEYS[1]) == 1 then
    return false
  end
  local v = ARGV[2] .. '\t' .. redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], v, 'PX', ARGV[3])
  return v
end
if redis.call('GET', KEYS[1]) ~= ARGV[2] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
