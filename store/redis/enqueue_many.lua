-- enqueue_many.lua: accept many messages of one batch (one sender, so one
-- shard) in one call.
--
-- KEYS[1] queue stream         wa:{sNN}:q:<sender>:b:<campaign> (or the delay zset when scheduled)
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] senders hash         wa:{sNN}:senders
-- KEYS[4] sender's queues      wa:{sNN}:queues:<sender>
-- KEYS[5] wake stream          wa:{sNN}:wake
-- KEYS[6] tenants' open count  wa:{sNN}:tq
-- KEYS[7] batch's message ids  wa:{sNN}:batch:<id>:ids
-- KEYS[8] woken senders        wa:{sNN}:awake
-- KEYS[9…] one state hash per message, in ARGV's order
--
-- ARGV[1]  now (unix ms)         ARGV[2]  state TTL (s)
-- ARGV[3]  tenant                ARGV[4]  sender
-- ARGV[5]  lane                  ARGV[6]  campaign
-- ARGV[7]  due (unix ms)         ARGV[8]  expires (unix ms, 0: never)
-- ARGV[9]  queue stream key      ARGV[10] "<lane>\t<campaign>"
-- ARGV[11] fallback text         ARGV[12] fallback after (s)
-- ARGV[13] max attempts (0: the dispatcher's)
-- then per message, from ARGV[14]: id, recipient, type, content
--
-- A message whose state exists already (the batch queued again after a
-- retry) is skipped. Returns {queued, skipped}.
local now, ttl, tenant, sender = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local due = tonumber(ARGV[7])
local scheduled = due > tonumber(now)
local status = 'queued'
if scheduled then status = 'scheduled' end
local fb = '0'
if ARGV[11] ~= '' then fb = '1' end
if not scheduled then
  ensure_queue(KEYS[1], KEYS[3], KEYS[4], sender, ARGV[10])
end
local queued, skipped = 0, 0
local ids = {}
for i = 9, #KEYS do
  local a = 14 + (i - 9) * 4
  local id, recipient = ARGV[a], ARGV[a + 1]
  local msg = KEYS[i]
  if redis.call('EXISTS', msg) == 1 then
    skipped = skipped + 1
  else
    redis.call('HSET', msg, 'st', status, 't', tenant, 'f', sender, 'r', recipient,
      'ty', ARGV[a + 2], 'b', ARGV[a + 3], 'l', ARGV[5], 'c', '', 'sm', '',
      'qa', now, 'a', 0, 'cp', ARGV[6], 'qk', ARGV[9])
    if ARGV[8] ~= '0' then redis.call('HSET', msg, 'x', ARGV[8]) end
    if ARGV[11] ~= '' then redis.call('HSET', msg, 'ft', ARGV[11]) end
    if ARGV[12] ~= '0' then redis.call('HSET', msg, 'fas', ARGV[12]) end
    if ARGV[13] ~= '0' then redis.call('HSET', msg, 'ma', ARGV[13]) end
    if scheduled then
      redis.call('HSET', msg, 'due', ARGV[7])
      redis.call('ZADD', KEYS[1], due, id .. '\n' .. ARGV[9] .. '\n' .. recipient .. '\n' .. sender .. '\n' .. ARGV[10] .. '\n' .. fb)
    else
      redis.call('XADD', KEYS[1], '*', 'id', id, 'r', recipient, 'fb', fb)
    end
    redis.call('EXPIRE', msg, ttl)
    ids[#ids + 1] = id
    emit_with(KEYS[2], id, {tenant, sender, recipient, ARGV[a + 2], ARGV[5], '', '', '0'},
      status, now, {'ch', 'whatsapp'})
    queued = queued + 1
  end
end
if queued > 0 then
  redis.call('RPUSH', KEYS[7], unpack(ids))
  redis.call('HINCRBY', KEYS[6], tenant, queued)
  redis.call('EXPIRE', KEYS[7], ttl)
  if not scheduled then
    wake(KEYS[5], KEYS[8], sender)
  end
end
return {queued, skipped}
