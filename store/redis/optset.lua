-- optset.lua: opt a guest out of (or back in to) a business number's
-- messages by API, with its event for the tenant's webhook.
--
-- KEYS[1] guest hash           wa:{sNN}:g:<sender>:<guest>
-- The notify stream is built from ARGV[1].
--
-- ARGV[1] shard prefix   ARGV[2] tenant   ARGV[3] sender   ARGV[4] guest
-- ARGV[5] "out" or "in"  ARGV[6] now (unix ms)   ARGV[7] source ("api")
-- ARGV[8] reason         ARGV[9] guest TTL (s), for an opt-in
--
-- Returns {changed (0/1), opted out now (0/1), since (ms)}.
local g = KEYS[1]
local cur = redis.call('HMGET', g, 'oo', 'ooa', 'cv')
local out = cur[1] == '1'
if (ARGV[5] == 'out') == out then
  local o = 0
  if out then o = 1 end
  return {0, o, cur[2] or ''}
end
local kind = 'guest_opted_in'
if ARGV[5] == 'out' then
  redis.call('HSET', g, 'oo', '1', 'ooa', ARGV[6], 'oos', ARGV[7])
  redis.call('PERSIST', g)
  kind = 'guest_opted_out'
else
  redis.call('HSET', g, 'oo', '0', 'ooa', ARGV[6], 'oos', ARGV[7])
  redis.call('EXPIRE', g, ARGV[9])
end
notify(ARGV[1], kind, ARGV[2], ARGV[3], ARGV[4], cur[3] or '', ARGV[6],
  cjson.encode({source = ARGV[7], reason = ARGV[8]}))
local o = 0
if ARGV[5] == 'out' then o = 1 end
return {1, o, ARGV[6]}
