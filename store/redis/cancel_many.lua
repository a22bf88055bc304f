-- cancel_many.lua: cancel the messages of a batch that are not sent yet.
--
-- KEYS[1] events stream        wa:{sNN}:events
-- KEYS[2] tenants' open count  wa:{sNN}:tq
-- KEYS[3…] state hashes
-- ARGV[1] now (unix ms)   ARGV[2] state TTL (s)   ARGV[3] tenant (must own them)
--
-- Queued and scheduled messages end "canceled"; their queue entries are
-- dropped when a dispatcher comes to them. A message being sent, or sent,
-- stays as it is. Returns how many were canceled.
local n = 0
for i = 3, #KEYS do
  local m = redis.call('HMGET', KEYS[i], 'st', 't')
  if m[2] == ARGV[3] and (m[1] == 'queued' or m[1] == 'scheduled') then
    record(KEYS[i], KEYS[1], KEYS[2], 'canceled', ARGV[1], {et = 'canceled through the API', ch = 'whatsapp'}, ARGV[2])
    n = n + 1
  end
end
return n
