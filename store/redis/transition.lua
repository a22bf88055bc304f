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
-- then per status, from ARGV[4]:
--   +0  message id           +1  status             +2  at (unix ms)
--   +3  its event's provider part, packed (eventcodec.go: ch p pid ec et
--       pc b pcv pm pt)
--   +4  n, then n values: the state's fields the status brings, as
--       field/value pairs (provider and its id, pricing, the provider's
--       conversation, a failure's error: lib.lua's status_fields)
--
-- A status moves the message only to a higher rank (a late "sent" never
-- overwrites "delivered"). Statuses of delivery progress (sent, delivered,
-- read, fallback) are facts even when late: each is recorded, with its
-- event, the first time it is seen. A failure, expiry or cancellation is
-- recorded only if it moves the message (a "failed" after "read" is noise).
-- A status seen before writes only what it brings anew (a provider's
-- pricing or conversation: Meta's "sent" webhook comes after the
-- dispatcher recorded "sent"); a pure duplicate writes nothing. A status's time is after
-- the times of the statuses it follows: providers stamp whole seconds. A
-- failure of a message that carries a fallback text schedules its fallback
-- at once. The statuses are applied in the order given.
--
-- Returns, per status, moved (0/1), first (0/1) and the message's status
-- after it, or -1, 0, '' when the message is unknown (its state expired).
local prefix, ttl, now = ARGV[1], ARGV[2], ARGV[3]
local out = {}
local b = 4
while b <= #ARGV do
  local msgkey = prefix .. 'msg:' .. ARGV[b]
  local st = ARGV[b + 1]
  local n = tonumber(ARGV[b + 4])
  local set = {}
  for i = 1, n do
    set[i] = ARGV[b + 4 + i]
  end
  local moved, first, prev = record(msgkey, KEYS[1], KEYS[2], st, ARGV[b + 2], nil, ttl, set, ARGV[b + 3])
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
  b = b + 5 + n
end
return out
