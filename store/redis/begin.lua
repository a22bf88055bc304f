-- begin.lua: a worker takes one queued message to send it.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] events stream        wa:{sNN}:events
-- ARGV[1] now (unix ms)
--
-- Marks the message "sending", counts the attempt and writes a "sending"
-- event before the provider is called, so that a worker dying between the
-- provider's answer and the state write is visible to whoever takes the
-- message next (previous status "sending"): that is the one case in which a
-- message may be sent twice.
--
-- Returns false when the message is gone (state expired), {status} when it is
-- no longer sendable (canceled, already sent…), or
-- {"go", previous status, tenant, sender, recipient, type, content, lane,
--  conversation id, staff member id, attempt, queued at, throttled attempts}.
local f = redis.call('HMGET', KEYS[1], 'st', 't', 'f', 'r', 'ty', 'b', 'l', 'c', 'sm', 'qa', 'tc')
local st = f[1]
if not st then
  return false
end
if st ~= 'queued' and st ~= 'scheduled' and st ~= 'sending' then
  return {st}
end
redis.call('HSET', KEYS[1], 'st', 'sending')
local attempt = redis.call('HINCRBY', KEYS[1], 'a', 1)
emit(KEYS[2], KEYS[1], 'sending', ARGV[1], {'ch', 'whatsapp'})
return {'go', st, f[2], f[3], f[4], f[5], f[6], f[7], f[8] or '', f[9] or '', tostring(attempt), f[10], f[11] or '0'}
