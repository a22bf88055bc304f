-- retry.lua: the shard's owner puts a message whose send failed
-- transiently back, due later, and holds its (sender, recipient) pair so
-- that later messages to that recipient wait for it.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] queue stream         the entry's stream
-- KEYS[3] delay zset           wa:{sNN}:delay
-- KEYS[4] events stream        wa:{sNN}:events
-- KEYS[5] lease                wa:{sNN}:lease:dispatch
-- KEYS[6] pairs hash           wa:{sNN}:pairs
--
-- ARGV[1] lease value          ARGV[2] consumer group
-- ARGV[3] queue entry id       ARGV[4] due (unix ms)
-- ARGV[5] delay member         ARGV[6] error code
-- ARGV[7] error title          ARGV[8] now (unix ms)
-- ARGV[9] "1" when the attempt does not count against the retry budget
--         (the provider throttled)
-- ARGV[10] pair field
--
-- Returns {"fenced"}, 0 when the message moved on meanwhile, or 1.
if fenced(KEYS[5], ARGV[1]) then
  return {'fenced'}
end
ack(KEYS[2], ARGV[2], ARGV[3])
if redis.call('HGET', KEYS[1], 'st') ~= 'sending' then
  unblock(KEYS[6], ARGV[10], message_id(KEYS[1]))
  return 0
end
redis.call('HSET', KEYS[1], 'st', 'queued', 'ec', ARGV[6], 'et', ARGV[7], 'due', ARGV[4])
if ARGV[9] == '1' then
  redis.call('HINCRBY', KEYS[1], 'tc', 1)
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[5])
if ARGV[10] ~= '' then
  redis.call('HSET', KEYS[6], ARGV[10], message_id(KEYS[1]))
end
emit(KEYS[4], KEYS[1], 'queued', ARGV[8], {'ec', ARGV[6], 'et', ARGV[7], 'ch', 'whatsapp'})
return 1
