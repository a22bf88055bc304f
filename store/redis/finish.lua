-- finish.lua: the shard's owner records the outcomes of sends (sent,
-- failed, fallback…), writes their events and acknowledges their queue
-- entries: the finishes one flush of the dispatcher's group commit carries
-- for one shard, in one call (the lease checked once, each stream's
-- entries acknowledged and deleted in one XACK and one XDEL).
--
-- KEYS[1] lease                wa:{sNN}:lease:dispatch
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] tenants' open count  wa:{sNN}:tq
-- KEYS[4] dead-letter stream   wa:{sNN}:dlq
-- KEYS[5] fallback checks      wa:{sNN}:fbcheck
-- The messages' state hashes are built from ARGV[3], their queue streams
-- are given whole (the same slot).
--
-- ARGV[1] consumer group       ARGV[2] state TTL (s)
-- ARGV[3] shard prefix (wa:{sNN}:)
-- then FINISH_FIELDS per message, from ARGV[4]:
--   +0  lease value (fencing token)   +1  message id
--   +2  queue stream            +3  queue entry id ('' for a message of a
--                                   batch's chunk)
--   +4  status                  +5  at (unix ms)
--   +6  provider                +7  provider message id
--   +8  error code              +9  error title        +10 channel
--   +11 "1": add to the dead-letter stream (retries exhausted)
--   +12 fallback check due (unix ms; "0": none)
--
-- Answers two values per message: {"fenced", 0}, {"gone", 0} when the
-- message is unknown, {"error", why} when its own step failed (its entry
-- stays pending; the call's other messages go on), or {moved (0/1),
-- first (0/1)}.
local FINISH_FIELDS = 13
local group, ttl, prefix = ARGV[1], ARGV[2], ARGV[3]
local owner = redis.call('GET', KEYS[1])
local out = {}
-- Each stream's entries to acknowledge, in the order first met.
local acks, streams = {}, {}
-- finish_one records the outcome of the message whose arguments start at
-- ARGV[b] and notes its entry to acknowledge; it returns its two answer
-- values.
local function finish_one(b)
  local id, stream, entry = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local msgkey = prefix .. 'msg:' .. id
  local at = ARGV[b + 5]
  local moved, first, _, cur, recorded = record(msgkey, KEYS[2], KEYS[3], ARGV[b + 4], at,
    {p = ARGV[b + 6], pid = ARGV[b + 7], ec = ARGV[b + 8], et = ARGV[b + 9], ch = ARGV[b + 10]}, ttl)
  if entry ~= '' then
    local a = acks[stream]
    if not a then
      a = {}
      acks[stream] = a
      streams[#streams + 1] = stream
    end
    a[#a + 1] = entry
  end
  if moved == nil then
    return 'gone', 0
  end
  if cur[10] then
    redis.call('HDEL', msgkey, 'rd')
  end
  if ARGV[b + 11] == '1' then
    local m = redis.call('HMGET', msgkey, 't', 'f', 'r', 'a')
    local dl = redis.call('XADD', KEYS[4], '*', 'm', id, 't', m[1], 'f', m[2], 'r', m[3], 'a', m[4] or '0',
      'ec', ARGV[b + 8], 'et', ARGV[b + 9], 'ts', at)
    redis.call('HSET', msgkey, 'dl', dl)
  end
  if ARGV[b + 12] ~= '0' and redis.call('HEXISTS', msgkey, 'ft') == 1 then
    -- Counted from the status's time as recorded, which may be a few ms
    -- after the one given (events strictly ordered): never early.
    local due = tonumber(ARGV[b + 12])
    if recorded and tonumber(recorded) > tonumber(at) then due = due + tonumber(recorded) - tonumber(at) end
    redis.call('ZADD', KEYS[5], string.format('%d', due), id)
  end
  return moved, first
end

for b = 4, #ARGV, FINISH_FIELDS do
  if owner ~= ARGV[b] then
    out[#out + 1] = 'fenced'
    out[#out + 1] = 0
  else
    -- One message's failure (a state no code of ours wrote) is its own: it
    -- is answered "error" and its entry stays pending; the others go on.
    local ok, r1, r2 = pcall(finish_one, b)
    if not ok then
      out[#out + 1] = 'error'
      out[#out + 1] = tostring(r1)
    else
      out[#out + 1] = r1
      out[#out + 1] = r2
    end
  end
end
for _, stream in ipairs(streams) do
  redis.call('XACK', stream, group, unpack(acks[stream]))
  redis.call('XDEL', stream, unpack(acks[stream]))
end
return out
