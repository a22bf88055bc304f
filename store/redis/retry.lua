-- retry.lua: the shard's owner puts a message whose send failed back, to
-- be tried again from a given time. Its queue entry stays pending where it
-- is: the owner keeps it in hand (and in its recipient's line) until then,
-- and a new owner taking the shard over finds it in its place, so the
-- recipient's later messages still wait for it.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] lease                wa:{sNN}:lease:dispatch
--
-- ARGV[1] lease value          ARGV[2] due (unix ms)
-- ARGV[3] error code           ARGV[4] error title
-- ARGV[5] now (unix ms)        ARGV[6] "1" when the attempt does not count
--                                      against the retry budget
-- ARGV[7] state TTL (s)
--
-- Running it twice for one attempt changes nothing more. Returns
-- {"fenced"}, 0 when the message moved on meanwhile, or 1.
if fenced(KEYS[3], ARGV[1]) then
  return {'fenced'}
end
if redis.call('HGET', KEYS[1], 'st') ~= 'sending' then
  return 0
end
redis.call('HSET', KEYS[1], 'st', 'queued', 'ec', ARGV[3], 'et', ARGV[4], 'rd', ARGV[2])
if ARGV[6] == '1' then
  redis.call('HINCRBY', KEYS[1], 'tc', 1)
end
redis.call('EXPIRE', KEYS[1], ARGV[7])
emit(KEYS[2], KEYS[1], 'queued', ARGV[5], {'ec', ARGV[3], 'et', ARGV[4], 'ch', 'whatsapp'})
return 1
