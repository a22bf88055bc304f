-- transition.lua: record providers' statuses of one shard's messages (from
-- webhooks, all that one read of the inbound processor brought), forward
-- only, each with its event: one call per shard per read.
--
-- KEYS[1] events stream        wa:{sNN}:events
-- KEYS[2] tenants' open count  wa:{sNN}:tq
-- KEYS[3] fallback checks      wa:{sNN}:fbcheck
-- The messages' state hashes are built from ARGV[1] (the same slot).
--
-- ARGV[1] shard prefix (wa:{sNN}:)   ARGV[2] state TTL (s)   ARGV[3] now (unix ms)
-- then TRANSITION_FIELDS per status, from ARGV[4]:
--   +0  message id           +1  status             +2  at (unix ms)
--   +3  provider             +4  provider message id
--   +5  error code           +6  error title        +7  channel
--   +8  pricing category     +9  billable (0/1/"")  +10 provider conversation id
--   +11 pricing model        +12 pricing type (Meta's pricing object)
--
-- A status moves the message only to a higher rank (a late "sent" never
-- overwrites "delivered"). Statuses of delivery progress (sent, delivered,
-- read, fallback) are facts even when late: each is recorded, with its
-- event, the first time it is seen. A failure, expiry or cancellation is
-- recorded only if it moves the message (a "failed" after "read" is noise).
-- Duplicates change nothing and write nothing. A status's time is after
-- the times of the statuses it follows: providers stamp whole seconds. A
-- failure of a message that carries a fallback text schedules its fallback
-- at once. The statuses are applied in the order given.
--
-- Returns, per status, moved (0/1), first (0/1) and the message's status
-- after it, or -1, 0, '' when the message is unknown (its state expired).
local TRANSITION_FIELDS = 13
local prefix, ttl, now = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for b = 4, #ARGV, TRANSITION_FIELDS do
  local msgkey = prefix .. 'msg:' .. ARGV[b]
  local st = ARGV[b + 1]
  local moved, first, prev = record(msgkey, KEYS[1], KEYS[2], st, ARGV[b + 2],
    {p = ARGV[b + 3], pid = ARGV[b + 4], ec = ARGV[b + 5], et = ARGV[b + 6], ch = ARGV[b + 7],
     pc = ARGV[b + 8], b = ARGV[b + 9], pcv = ARGV[b + 10], pm = ARGV[b + 11], pt = ARGV[b + 12]}, ttl)
  if moved == nil then
    out[#out + 1] = -1
    out[#out + 1] = 0
    out[#out + 1] = ''
  else
    local now_st = prev
    if moved == 1 then
      now_st = st
      if st == 'failed' and redis.call('HEXISTS', msgkey, 'ft') == 1 then
        redis.call('ZADD', KEYS[3], now, ARGV[b])
      end
    end
    out[#out + 1] = moved
    out[#out + 1] = first
    out[#out + 1] = now_st
  end
end
return out
