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
-- overwrites "delivered"); each status is recorded, and its event written,
-- the first time it is seen, so duplicates change nothing. A status's time
-- is never earlier than the times of the statuses it follows.
-- Returns {moved (0/1), first time (0/1), current status}, or false when the
-- message is unknown (its state expired).
local rank = {queued = 0, scheduled = 0, sending = 1, sent = 2, fallback = 2,
  failed = 3, expired = 3, canceled = 3, delivered = 4, read = 5}
local at_field = {sent = 'sa', delivered = 'da', read = 'ra', failed = 'fa',
  expired = 'xa', canceled = 'ca', fallback = 'fb'}

if #KEYS >= 3 then
  redis.call('XACK', KEYS[3], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[3], ARGV[2])
end

local cur = redis.call('HMGET', KEYS[1], 'st', 't', 'f', 'r', 'ty', 'l', 'c', 'a', 'qa', 'sa', 'da')
if not cur[1] then
  return false
end
local new = ARGV[3]
local r = rank[new]
if r == nil then
  return {0, 0, cur[1]}
end

-- Providers stamp statuses in whole seconds: a "delivered" may carry a time
-- before the "sent" we stamped in milliseconds. No status happens before
-- the ones it follows, so its time is raised to theirs.
local at = tonumber(ARGV[4]) or 0
local function floor(v)
  local n = tonumber(v)
  if n and n > at then at = n end
end
floor(cur[9])
if r >= 3 then floor(cur[10]) end
if r == 5 then floor(cur[11]) end
at = string.format('%d', at)

local first = 0
local tf = at_field[new]
if tf and redis.call('HSETNX', KEYS[1], tf, at) == 1 then
  first = 1
end
local moved = 0
if r > rank[cur[1]] then
  moved = 1
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
  redis.call('XADD', KEYS[2], '*', 'm', string.match(KEYS[1], 'msg:(.*)$'), 't', cur[2],
    'f', cur[3], 'r', cur[4], 's', new, 'ts', at, 'ty', cur[5], 'l', cur[6],
    'c', cur[7] or '', 'a', cur[8] or '0', 'p', ARGV[5], 'pid', ARGV[6], 'ec', ARGV[7],
    'et', ARGV[8], 'ch', ARGV[9], 'pc', ARGV[10], 'b', ARGV[11], 'pcv', ARGV[12])
end
return {moved, first, redis.call('HGET', KEYS[1], 'st')}
