-- lib.lua: what the scripts share. scripts.go puts it in front of each
-- script's source, so every script is self-contained in Redis's cache.
-- Every key a script touches is passed in KEYS or built from a shard prefix
-- passed in ARGV, and all carry the shard's hash tag: one slot per script.

-- RANK orders statuses for forward-only updates (message.Rank, kept equal
-- by TestLuaRankMatchesGo).
local RANK = {queued = 0, scheduled = 0, sending = 1, sent = 2, fallback = 2,
  failed = 3, expired = 3, canceled = 3, delivered = 4, read = 5}

-- AT_FIELD names the hash field holding when a status was first reached.
local AT_FIELD = {sent = 'sa', delivered = 'da', read = 'ra', failed = 'fa',
  expired = 'xa', canceled = 'ca', fallback = 'fb'}

-- message_id returns the id at the end of a state hash key "...:msg:<id>".
local function message_id(msgkey)
  return string.match(msgkey, 'msg:(.*)$')
end

-- EVENT_FIELDS are the message's hash fields an event carries, in the
-- order emit_with takes them.
local EVENT_FIELDS = {'t', 'f', 'r', 'ty', 'l', 'c', 'sm', 'a'}

-- emit_with appends one event of message id to the events stream: m holds
-- the message's EVENT_FIELDS (tenant, sender, recipient, type, lane,
-- conversation, staff member, attempt), then status, time and extra
-- field/value pairs (provider, error…).
local function emit_with(events, id, m, status, at, extra)
  local args = {'m', id, 't', m[1], 'f', m[2], 'r', m[3], 's', status,
    'ts', at, 'ty', m[4], 'l', m[5], 'c', m[6] or '', 'sm', m[7] or '', 'a', m[8] or '0'}
  for i = 1, #extra do
    args[#args + 1] = extra[i]
  end
  redis.call('XADD', events, '*', unpack(args))
end

-- emit is emit_with for a message whose fields are read from its hash.
local function emit(events, msgkey, status, at, extra)
  emit_with(events, message_id(msgkey), redis.call('HMGET', msgkey, unpack(EVENT_FIELDS)), status, at, extra)
end

-- ack removes a queue entry once its message is dealt with.
local function ack(stream, group, id)
  redis.call('XACK', stream, group, id)
  redis.call('XDEL', stream, id)
end

-- fenced reports that the caller's lease is not the shard's current one:
-- another instance owns the shard now, and this one must not write.
local function fenced(lease, value)
  return redis.call('GET', lease) ~= value
end

-- ensure_queue creates a sender's queue stream with its consumer group and
-- registers it, when it does not exist yet.
local function ensure_queue(stream, senders, queues, sender, regval)
  if redis.call('EXISTS', stream) == 0 then
    redis.call('XGROUP', 'CREATE', stream, 'dispatch', '0', 'MKSTREAM')
    redis.call('HSET', queues, stream, regval)
    redis.call('HSET', senders, sender, '1')
  end
end

-- wake tells the shard's owner that sender has new entries: once until the
-- owner's listener takes the wake-up (and clears the flag in awake), so a
-- burst of messages costs one wake-up, not one each.
local function wake(wakekey, awake, sender)
  if redis.call('HSETNX', awake, sender, '1') == 1 then
    redis.call('XADD', wakekey, 'MAXLEN', '~', 1000, '*', 's', sender)
  end
end

-- record applies status new at time at to the message in msgkey, forward
-- only, and writes its event (the rules are in transition.lua). f holds the
-- provider's fields p, pid, ec, et, ch, pc, b, pcv. A message leaving the
-- open statuses (queued, scheduled, sending) for good is taken off its
-- tenant's count in tq. Returns moved (0/1), first (0/1) and the previous
-- status, or nil when the message is unknown.
local function record(msgkey, events, tq, new, at, f, ttl)
  local cur = redis.call('HMGET', msgkey, 'st', 'qa', 'sa', 'da', 't', 'f', 'r', 'ty', 'l', 'c', 'sm', 'a')
  if not cur[1] then
    return nil
  end
  local r = RANK[new]
  if r == nil then
    return 0, 0, cur[1]
  end
  local moves = r > RANK[cur[1]]
  local progress = new == 'sent' or new == 'delivered' or new == 'read' or new == 'fallback'
  if not moves and not progress then
    return 0, 0, cur[1]
  end
  at = tonumber(at) or 0
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
  if tf and redis.call('HSETNX', msgkey, tf, at) == 1 then
    first = 1
  end
  if moves then
    redis.call('HSET', msgkey, 'st', new)
    if new == 'failed' or new == 'expired' or new == 'canceled' then
      redis.call('HSET', msgkey, 'ec', f.ec or '', 'et', f.et or '')
    end
    if RANK[cur[1]] <= 1 and r >= 2 then
      redis.call('HINCRBY', tq, cur[5], -1)
    end
  end
  if new == 'fallback' then
    -- The fallback's provider and id are its own: the WhatsApp ones stay.
    redis.call('HSET', msgkey, 'fbp', f.p or '', 'fbid', f.pid or '', 'fbch', f.ch or '')
  else
    if (f.p or '') ~= '' then redis.call('HSET', msgkey, 'p', f.p) end
    if (f.pid or '') ~= '' then redis.call('HSET', msgkey, 'pid', f.pid) end
  end
  if (f.pc or '') ~= '' then redis.call('HSET', msgkey, 'pc', f.pc, 'bl', f.b or '') end
  if (f.pcv or '') ~= '' then redis.call('HSET', msgkey, 'pcv', f.pcv) end
  redis.call('EXPIRE', msgkey, ttl)
  if first == 1 then
    emit_with(events, message_id(msgkey), {cur[5], cur[6], cur[7], cur[8], cur[9], cur[10], cur[11], cur[12]},
      new, at, {'p', f.p or '', 'pid', f.pid or '', 'ec', f.ec or '',
      'et', f.et or '', 'ch', f.ch or '', 'pc', f.pc or '', 'b', f.b or '', 'pcv', f.pcv or ''})
  end
  local moved = 0
  if moves then moved = 1 end
  return moved, first, cur[1]
end
