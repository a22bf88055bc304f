-- enqueue_many.lua: accept many messages of one batch (one sender, so one
-- shard) in one call.
--
-- KEYS[1] queue stream         wa:{sNN}:q:<sender>:b:<campaign> (or the delay zset when scheduled)
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] senders hash         wa:{sNN}:senders
-- KEYS[4] sender's queues      wa:{sNN}:queues:<sender>
-- KEYS[5] wake stream          wa:{sNN}:wake
-- KEYS[6] tenants' open count  wa:{sNN}:tq
-- KEYS[7] woken senders        wa:{sNN}:awake
-- KEYS[8…] one state hash per message, in ARGV's order (the batch's ids
--          follow from its id and their positions: message.BatchMessageID)
-- The guests' and conversations' keys are built from ARGV[14].
--
-- ARGV[1]  now (unix ms)         ARGV[2]  state TTL (s)
-- ARGV[3]  tenant                ARGV[4]  sender
-- ARGV[5]  lane                  ARGV[6]  campaign
-- ARGV[7]  due (unix ms)         ARGV[8]  expires (unix ms, 0: never)
-- ARGV[9]  queue stream key      ARGV[10] "<lane>\t<campaign>"
-- ARGV[11] fallback text         ARGV[12] fallback after (s)
-- ARGV[13] max attempts (0: the dispatcher's)
-- ARGV[14] shard prefix          ARGV[15] "1": free-form messages need the window open
-- ARGV[16] window (ms)           ARGV[17] conversation TTL (s)
-- then per message, from ARGV[18]: id, recipient, type, content, preview
--
-- A message whose state exists already (the batch queued again after a
-- retry) is skipped. A message the guest may not get (opted out, or
-- free-form outside the window) is not queued: it is recorded as failed
-- with the reason, so that the batch's counts still add up. Returns
-- {queued, skipped, refused}.
local now, ttl, tenant, sender = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local prefix, checkwin, window, convttl = ARGV[14], ARGV[15] == '1', tonumber(ARGV[16]), ARGV[17]
local due = tonumber(ARGV[7])
local scheduled = due > tonumber(now)
local status = 'queued'
if scheduled then status = 'scheduled' end
local fb = '0'
if ARGV[11] ~= '' then fb = '1' end
if not scheduled then
  ensure_queue(KEYS[1], KEYS[3], KEYS[4], sender, ARGV[10])
end
-- The optional state fields every message of the batch shares.
local opts = {}
if ARGV[8] ~= '0' then opts[#opts + 1] = 'x'; opts[#opts + 1] = ARGV[8] end
if ARGV[11] ~= '' then opts[#opts + 1] = 'ft'; opts[#opts + 1] = ARGV[11] end
if ARGV[12] ~= '0' then opts[#opts + 1] = 'fas'; opts[#opts + 1] = ARGV[12] end
if ARGV[13] ~= '0' then opts[#opts + 1] = 'ma'; opts[#opts + 1] = ARGV[13] end
if scheduled then opts[#opts + 1] = 'due'; opts[#opts + 1] = ARGV[7] end
local queued, skipped, refused = 0, 0, 0
for i = 8, #KEYS do
  local a = 18 + (i - 8) * 5
  local id, recipient, ty, preview = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 4]
  local msg = KEYS[i]
  if redis.call('EXISTS', msg) == 1 then
    skipped = skipped + 1
  else
    local g = guest_key(prefix, sender, recipient)
    local gv = redis.call('HMGET', g, unpack(GUEST_FIELDS))
    local why = guest_refusal(gv, now, window, checkwin and ty ~= 'template')
    if why then
      local ec, et = '', 'GUEST_OPTED_OUT: the guest has opted out of this number\'s messages'
      if why == 'window' then
        ec, et = '131047', 'MESSAGE_WINDOW_EXPIRED: free-form message outside the 24-hour window; use a template'
      end
      redis.call('HSET', msg, 'st', 'failed', 't', tenant, 'f', sender, 'r', recipient,
        'ty', ty, 'b', ARGV[a + 3], 'l', ARGV[5], 'c', '', 'sm', '',
        'qa', now, 'a', 0, 'cp', ARGV[6], 'fa', now, 'ec', ec, 'et', et)
      redis.call('EXPIRE', msg, ttl)
      emit_with(KEYS[2], id, {tenant, sender, recipient, ty, ARGV[5], '', '', '0'},
        'failed', now, {'ch', 'whatsapp', 'ec', ec, 'et', et})
      refused = refused + 1
    else
      local conv, created = conv_outbound(prefix, g, gv, tenant, sender, recipient, '', 'conv_' .. string.sub(id, 5), now, convttl)
      local st = {'st', status, 't', tenant, 'f', sender, 'r', recipient,
        'ty', ty, 'b', ARGV[a + 3], 'l', ARGV[5], 'c', conv, 'sm', '',
        'qa', now, 'a', 0, 'cp', ARGV[6], 'qk', ARGV[9]}
      for _, o in ipairs(opts) do st[#st + 1] = o end
      redis.call('HSET', msg, unpack(st))
      if scheduled then
        redis.call('ZADD', KEYS[1], due, id .. '\n' .. ARGV[9] .. '\n' .. recipient .. '\n' .. sender .. '\n' .. ARGV[10] .. '\n' .. fb)
      else
        redis.call('XADD', KEYS[1], '*', 'id', id, 'r', recipient, 'fb', fb)
      end
      redis.call('EXPIRE', msg, ttl)
      file_add(prefix, 'o', tenant, conv, sender, recipient, now,
        cjson.encode({d = 'out', id = id, at = tonumber(now), ty = ty, p = preview}), preview, created)
      emit_with(KEYS[2], id, {tenant, sender, recipient, ty, ARGV[5], conv, '', '0'},
        status, now, {'ch', 'whatsapp'})
      queued = queued + 1
    end
  end
end
if queued > 0 then
  redis.call('HINCRBY', KEYS[6], tenant, queued)
  if not scheduled then
    wake(KEYS[5], KEYS[7], sender)
  end
end
return {queued, skipped, refused}
