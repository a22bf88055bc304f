-- requeue.lua: an admin sends a dead-lettered message again.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] dead-letter stream   wa:{sNN}:dlq
-- KEYS[3] queue stream         the message's queue (its "qk")
-- KEYS[4] senders hash         wa:{sNN}:senders
-- KEYS[5] sender's queues      wa:{sNN}:queues:<sender>
-- KEYS[6] wake stream          wa:{sNN}:wake
-- KEYS[7] events stream        wa:{sNN}:events
-- KEYS[8] tenants' open count  wa:{sNN}:tq
-- KEYS[9] woken senders        wa:{sNN}:awake
--
-- ARGV[1] dead-letter entry id   ARGV[2] tenant (must own the message)
-- ARGV[3] now (unix ms)          ARGV[4] state TTL (s)
-- ARGV[5] "<lane>\t<campaign>"
--
-- The message gets a fresh retry budget (attempt base = attempts so far)
-- and forgets its failure, so that a new one is recorded.
-- Returns 1, or "gone" / "not_yours" / "not_failed".
local m = redis.call('HMGET', KEYS[1], 'st', 't', 'f', 'r', 'a', 'tc')
if not m[1] then
  return 'gone'
end
if m[2] ~= ARGV[2] then
  return 'not_yours'
end
if m[1] ~= 'failed' then
  return 'not_failed'
end
local attempts = tonumber(m[5] or '0')
local throttled = tonumber(m[6] or '0')
redis.call('HSET', KEYS[1], 'st', 'queued', 'ab', attempts - throttled)
-- The validity is dropped too: an admin sending it again means it.
redis.call('HDEL', KEYS[1], 'fa', 'ec', 'et', 'x', 'rd', 'dl')
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('HINCRBY', KEYS[8], m[2], 1)
ensure_queue(KEYS[3], KEYS[4], KEYS[5], m[3], ARGV[5])
local fb = '0'
if redis.call('HEXISTS', KEYS[1], 'ft') == 1 then fb = '1' end
redis.call('XADD', KEYS[3], '*', 'id', message_id(KEYS[1]), 'r', m[4], 'fb', fb)
wake(KEYS[6], KEYS[9], m[3])
redis.call('XDEL', KEYS[2], ARGV[1])
emit(KEYS[7], KEYS[1], 'queued', ARGV[3], {'et', 'requeued from the dead-letter stream', 'ch', 'whatsapp'})
return 1
