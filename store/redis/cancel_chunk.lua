-- cancel_chunk.lua: cancel the messages of one chunk of a batch that are
-- not sent yet, whether the dispatcher has made their state already or
-- not: a message without a state gets one, "canceled", so that the
-- dispatcher, coming to it later, finds it settled.
--
-- KEYS[1] events stream        wa:{sNN}:events; the other keys are built
--                              from ARGV[1] (the same slot)
--
-- ARGV[1] shard prefix         ARGV[2] now (unix ms)
-- ARGV[3] state TTL (s)        ARGV[4] tenant (must own them)
-- ARGV[5] sender               ARGV[6] campaign
-- ARGV[7] the batch's acceptance time (unix ms)
-- then three per message, from ARGV[8]: id, recipient, type
--
-- Returns how many were canceled.
local prefix, now, ttl, tenant, sender, campaign, qa = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local tq = prefix .. 'tq'
local why = 'canceled through the API'
local n = 0
for i = 8, #ARGV, 3 do
  local id, recipient, ty = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local msg = prefix .. 'msg:' .. id
  local m = redis.call('HMGET', msg, 'st', 't')
  if m[1] then
    if m[2] == tenant and (m[1] == 'queued' or m[1] == 'scheduled') then
      record(msg, KEYS[1], tq, 'canceled', now, {et = why, ch = 'whatsapp'}, ttl)
      n = n + 1
    end
  else
    local st = {'st', 'canceled', 't', tenant, 'f', sender, 'r', recipient, 'ty', ty, 'l', 'bulk',
      'qa', qa, 'ca', now, 'et', why}
    if campaign ~= '' then st[#st + 1] = 'cp'; st[#st + 1] = campaign end
    redis.call('HSET', msg, unpack(st))
    redis.call('EXPIRE', msg, ttl)
    local m8 = {tenant, sender, recipient, ty, 'bulk', '', '', '0', campaign, ''}
    emit_with(KEYS[1], id, m8, 'queued', qa, {'ch', 'whatsapp'})
    emit_with(KEYS[1], id, m8, 'canceled', now, {'ec', '', 'et', why, 'ch', 'whatsapp'})
    redis.call('HINCRBY', tq, tenant, -1)
    n = n + 1
  end
end
return n
