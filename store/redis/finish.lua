-- finish.lua: the shard's owner records the outcome of a send (sent,
-- failed, fallback…), writes its event and acknowledges the queue entry.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] lease                wa:{sNN}:lease:dispatch
-- KEYS[4] queue stream         the entry's stream
-- KEYS[5] tenants' open count  wa:{sNN}:tq
-- KEYS[6] dead-letter stream   wa:{sNN}:dlq
-- KEYS[7] fallback checks      wa:{sNN}:fbcheck
--
-- ARGV[1]  lease value          ARGV[2]  consumer group
-- ARGV[3]  queue entry id ('' for a message of a batch's chunk)
-- ARGV[4]  status
-- ARGV[5]  at (unix ms)         ARGV[6]  provider
-- ARGV[7]  provider message id  ARGV[8]  error code
-- ARGV[9]  error title          ARGV[10] channel
-- ARGV[11] state TTL (s)
-- ARGV[12] "1": add to the dead-letter stream (retries exhausted)
-- ARGV[13] fallback check due (unix ms; "0": none)
--
-- Returns {"fenced"}, false when the message is unknown, or
-- {moved (0/1), first (0/1)}.
if fenced(KEYS[3], ARGV[1]) then
  return {'fenced'}
end
if ARGV[3] ~= '' then
  ack(KEYS[4], ARGV[2], ARGV[3])
end
local id = message_id(KEYS[1])
local moved, first = record(KEYS[1], KEYS[2], KEYS[5], ARGV[4], ARGV[5],
  {p = ARGV[6], pid = ARGV[7], ec = ARGV[8], et = ARGV[9], ch = ARGV[10]}, ARGV[11])
if moved == nil then
  return false
end
redis.call('HDEL', KEYS[1], 'rd')
if ARGV[12] == '1' then
  local m = redis.call('HMGET', KEYS[1], 't', 'f', 'r', 'a')
  local dl = redis.call('XADD', KEYS[6], '*', 'm', id, 't', m[1], 'f', m[2], 'r', m[3], 'a', m[4] or '0',
    'ec', ARGV[8], 'et', ARGV[9], 'ts', ARGV[5])
  redis.call('HSET', KEYS[1], 'dl', dl)
end
if ARGV[13] ~= '0' and redis.call('HEXISTS', KEYS[1], 'ft') == 1 then
  redis.call('ZADD', KEYS[7], ARGV[13], id)
end
return {moved, first}
