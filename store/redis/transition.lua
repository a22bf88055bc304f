-- transition.lua: record a provider's status of one message (from a
-- webhook), forward only, and its event.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] tenants' open count  wa:{sNN}:tq
-- KEYS[4] fallback checks      wa:{sNN}:fbcheck
--
-- ARGV[1]  status               ARGV[2]  at (unix ms)
-- ARGV[3]  provider             ARGV[4]  provider message id
-- ARGV[5]  error code           ARGV[6]  error title
-- ARGV[7]  channel              ARGV[8]  pricing category
-- ARGV[9]  billable (0/1/"")    ARGV[10] provider conversation id
-- ARGV[11] state TTL (s)        ARGV[12] now (unix ms)
-- ARGV[13] pricing model        ARGV[14] pricing type (Meta's pricing object)
--
-- A status moves the message only to a higher rank (a late "sent" never
-- overwrites "delivered"). Statuses of delivery progress (sent, delivered,
-- read, fallback) are facts even when late: each is recorded, with its
-- event, the first time it is seen. A failure, expiry or cancellation is
-- recorded only if it moves the message (a "failed" after "read" is noise).
-- Duplicates change nothing. A status's time is after the times of the
-- statuses it follows: providers stamp whole seconds. A failure of a message
-- that carries a fallback text schedules its fallback at once.
-- Returns {moved (0/1), first (0/1), current status}, or false when the
-- message is unknown (its state expired).
local moved, first = record(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2],
  {p = ARGV[3], pid = ARGV[4], ec = ARGV[5], et = ARGV[6], ch = ARGV[7],
   pc = ARGV[8], b = ARGV[9], pcv = ARGV[10], pm = ARGV[13], pt = ARGV[14]}, ARGV[11])
if moved == nil then
  return false
end
if moved == 1 and ARGV[1] == 'failed' and redis.call('HEXISTS', KEYS[1], 'ft') == 1 then
  redis.call('ZADD', KEYS[4], ARGV[12], message_id(KEYS[1]))
end
return {moved, first, redis.call('HGET', KEYS[1], 'st')}
