-- claim_due.lua: claim the due members of a zset of timed work (webhook
-- retries): their scores move a lease ahead, so that one claimer at a time
-- gets each, and a claimer that dies gives it back when the lease passes.
--
-- KEYS[1] the zset             wa:hookretry
-- ARGV[1] now (unix ms)   ARGV[2] lease end (unix ms)   ARGV[3] at most this many
--
-- Returns the claimed members.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, m in ipairs(due) do
  redis.call('ZADD', KEYS[1], ARGV[2], m)
end
return due
