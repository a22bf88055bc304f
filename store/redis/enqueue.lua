-- enqueue.lua: accept one message, atomically: idempotency, the guest's
-- opt-out and 24-hour window, the conversation, the state, the queue entry
-- and the event.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] queue stream         wa:{sNN}:q:<sender>:tx|b:<campaign>,
--                              or the delay zset wa:{sNN}:delay when scheduled
-- KEYS[3] events stream        wa:{sNN}:events
-- KEYS[4] senders hash         wa:{sNN}:senders
-- KEYS[5] sender's queues      wa:{sNN}:queues:<sender>
-- KEYS[6] wake stream          wa:{sNN}:wake
-- KEYS[7] tenants' open count  wa:{sNN}:tq
-- KEYS[8] woken senders        wa:{sNN}:awake
-- KEYS[9] guest hash           wa:{sNN}:g:<sender>:<guest>
-- KEYS[10] idempotency key     wa:{sNN}:idem:<tenant>:<key> (optional)
-- The conversation's keys (cv:, cvh:, cvi:) are built from ARGV[21].
--
-- ARGV[1]  message id            ARGV[2]  now (unix ms)
-- ARGV[3]  state TTL (s)         ARGV[4]  idempotency TTL (s)
-- ARGV[5]  request fingerprint   ARGV[6]  tenant
-- ARGV[7]  sender                ARGV[8]  recipient
-- ARGV[9]  type                  ARGV[10] content (Meta's object, JSON)
-- ARGV[11] lane                  ARGV[12] conversation id asked for ('' none)
-- ARGV[13] staff member id       ARGV[14] due (unix ms; > now means scheduled)
-- ARGV[15] campaign              ARGV[16] expires (unix ms, 0: never)
-- ARGV[17] fallback text         ARGV[18] fallback after (s, 0: on failure only)
-- ARGV[19] queue stream key      ARGV[20] "<lane>\t<campaign>"
-- ARGV[21] shard prefix          ARGV[22] "1": the message needs the window open
-- ARGV[23] window (ms)           ARGV[24] conversation TTL (s)
-- ARGV[25] inbox preview         ARGV[26] conversation metadata (JSON object or '')
-- ARGV[27] "1": send even to an opted-out guest (the opt-out confirmation)
--
-- Returns {"ok", id, conversation} when queued; {"dup", first id} when the
-- idempotency key was seen with the same fingerprint, {"conflict", first
-- id} with a different request; {"optout", since, how}; {"window", last
-- inbound ms or ''}; {"conv_other"} or {"conv_closed"} for a conversation
-- id that cannot take the message. Only "ok" changes anything.
local id = ARGV[1]
local now = ARGV[2]
local tenant, sender, guest = ARGV[6], ARGV[7], ARGV[8]
local prefix = ARGV[21]
if #KEYS >= 10 then
  local prev = redis.call('GET', KEYS[10])
  if prev then
    local sep = string.find(prev, '\n', 1, true)
    local first = string.sub(prev, 1, sep - 1)
    if string.sub(prev, sep + 1) ~= ARGV[5] then
      return {'conflict', first}
    end
    return {'dup', first}
  end
end

local g = KEYS[9]
-- The guest's opt-out flag as read by guest_refusal (nil: not read).
local oo = nil
if ARGV[27] ~= '1' then
  local why, a, b = guest_refusal(g, now, tonumber(ARGV[23]), ARGV[22] == '1')
  if why then
    return {why, a, b}
  end
  oo = false
end
local conv, created, fresh = conv_outbound(prefix, g, tenant, sender, guest, ARGV[12], conv_id_for(id), now, ARGV[25])
if not conv then
  return {created}
end
if #KEYS >= 10 then
  redis.call('SET', KEYS[10], id .. '\n' .. ARGV[5], 'EX', ARGV[4])
end

local due = tonumber(ARGV[14])
local status = 'queued'
if due > tonumber(now) then
  status = 'scheduled'
end
local st = {'st', status, 't', tenant, 'f', sender, 'r', guest,
  'ty', ARGV[9], 'b', ARGV[10], 'l', ARGV[11], 'c', conv, 'sm', ARGV[13],
  'qa', now, 'a', 0, 'cp', ARGV[15], 'qk', ARGV[19]}
local function opt(k, v) st[#st + 1] = k; st[#st + 1] = v end
if ARGV[16] ~= '0' then opt('x', ARGV[16]) end
if ARGV[17] ~= '' then opt('ft', ARGV[17]) end
if ARGV[18] ~= '0' then opt('fas', ARGV[18]) end
if status == 'scheduled' then opt('due', ARGV[14]) end
redis.call('HSET', KEYS[1], unpack(st))
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('HINCRBY', KEYS[7], tenant, 1)
local fb = '0'
if ARGV[17] ~= '' then fb = '1' end
if status == 'scheduled' then
  redis.call('ZADD', KEYS[2], due, id .. '\n' .. ARGV[19] .. '\n' .. guest .. '\n' .. sender .. '\n' .. ARGV[20] .. '\n' .. fb)
else
  ensure_queue(KEYS[2], KEYS[4], KEYS[5], sender, ARGV[20])
  redis.call('XADD', KEYS[2], '*', 'id', id, 'r', guest, 'fb', fb)
  wake(KEYS[6], KEYS[8], sender)
end

local ttl = ARGV[24]
conv_add(prefix, conv, tenant, sender, guest, out_entry(id, now, ARGV[9], ARGV[25], ARGV[13]), ARGV[25], 'out', now, ttl, created, fresh)
conv_meta(prefix, tenant, conv, ARGV[26])
if not fresh then
  keep_guest(g, ttl, oo)
end

emit_with(KEYS[3], id, {tenant, sender, guest, ARGV[9], ARGV[11], conv, ARGV[13], '0'},
  status, now, {'ch', 'whatsapp'})
return {'ok', id, conv}
