-- transition.lua: record a status of one message, forward only, and its event.
-- Used for the dispatcher's outcome of a send (with the queue entry to ack)
-- and for providers' status webhooks.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] queue stream         wa:{sNN}:q:<lane> (optional: XACK and XDEL ARGV[2])
--
-- ARGV[1]  consumer group       ARGV[2]  queue entry id
-- ARGV[3]  status               ARGV[4]  at (unix ms)
-- ARGV[5]  provider             ARGV[6]  provider message id
-- ARGV[7]  error code           ARGV[8]  error title
-- ARGV[9]  channel              ARGV[10] pricing category
-- ARGV[11] billable (0/1/"")    ARGV[12] provider conversation id
-- ARGV[13] state TTL (s)
--
-- A status moves the message only to a higher rank (a late "sent" never
-- overwrites "delivered"). Statuses of delivery progress (sent, delivered,
-- read, fallback) are facts even when late: each is recorded, with its
-- event, the first time it is seen. A failure, expiry or cancellation is
-- recorded only if it moves the message (a "failed" after "read" is noise).
-- Duplicates change nothing. A status's time is after the times of the
-- statuses it follows: providers stamp whole seconds.
-- Returns {moved (0/1), first time (0/1), current status}, or false when the
-- message is unknown (its state expired).
if #KEYS >= 3 then
  redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[3], ARGV[2])
end

local cur = redis.call('HMGET', KEYS[1], 'st', 'qa', 'sa', 'da')
if not cur[1] then
  return false
end
local new = ARGV[3]
local r = RANK[new]
if r == nil then
  return {0, 0, cur[1]}
end
local moves = r > RANK[cur[1]]
local progress = new == 'sent' or new == 'delivered' or new == 'read' or new == 'fallback'
if not moves and not progress then
  return {0, 0, cur[1]}
end

local at = tonumber(ARGV[4]) or 0
local function after(v)
  local n = tonumber(v)
  if n and n >= at then at = n + 1 end
end
after(cur[2])
if r >= 3 then after(cur[3]) end
if r == 5 then after(cur[4]) end
at = string.format('%d', at)

local first = 0
local tf = AT_FIELD[new]
if tf and redis.call('HSETNX', KEYS[1], tf, at) == 1 then
  first = 1
end
if moves then
  redis.call('HSET', KEYS[1], 'st', new)
  if new == 'failed' or new == 'expired' then
    redis.call('HSET', KEYS[1], 'ec', ARGV[7], 'et', ARGV[8])
  end
end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'p', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'pid', ARGV[6]) end
if ARGV[10] ~= '' then redis.call('HSET', KEYS[1], 'pc', ARGV[10], 'bl', ARGV[11]) end
if ARGV[12] ~= '' then redis.call('HSET', KEYS[1], 'pcv', ARGV[12]) end
redis.call('EXPIRE', KEYS[1], ARGV[13])

if first == 1 then
  emit(KEYS[2], KEYS[1], new, at, {'p', ARGV[5], 'pid', ARGV[6], 'ec', ARGV[7],
    'et', ARGV[8], 'ch', ARGV[9], 'pc', ARGV[10], 'b', ARGV[11], 'pcv', ARGV[12]})
end
local moved = 0
if moves then moved = 1 end
return {moved, first, redis.call('HGET', KEYS[1], 'st')}
