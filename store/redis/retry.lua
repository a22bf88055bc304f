-- retry.lua: put a message whose send failed transiently back, due later.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] queue stream         wa:{sNN}:q:<lane> (XACK and XDEL ARGV[2])
-- KEYS[3] delay zset           wa:{sNN}:delay
-- KEYS[4] events stream        wa:{sNN}:events
--
-- ARGV[1] consumer group       ARGV[2] queue entry id
-- ARGV[3] due (unix ms)        ARGV[4] "<lane>|<id>" delay member
-- ARGV[5] error code           ARGV[6] error title
-- ARGV[7] now (unix ms)        ARGV[8] "1" when the attempt does not count
--                                      against the retry budget (throttling)
--
-- The message goes back to "queued" (with a "queued" event carrying the
-- error) unless something moved it on meanwhile.
local st = redis.call('HGET', KEYS[1], 'st')
redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[2], ARGV[2])
if st ~= 'sending' then
  return 0
end
redis.call('HSET', KEYS[1], 'st', 'queued', 'ec', ARGV[5], 'et', ARGV[6])
if ARGV[8] == '1' then
  redis.call('HINCRBY', KEYS[1], 'tc', 1)
end
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[4])
emit(KEYS[4], KEYS[1], 'queued', ARGV[7], {'ec', ARGV[5], 'et', ARGV[6], 'ch', 'whatsapp'})
return 1
