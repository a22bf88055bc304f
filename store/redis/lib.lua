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

-- Guests and conversations, all on the shard of the business number:
--   g:<sender>:<guest>  hash  cv current conversation, li last inbound (ms),
--                             oo "1" opted out, ooa when, oos how (keyword, api)
--   cv:<tenant>:<id>    hash  t tenant, f sender, g guest, st open|archived|closed,
--                             ca created, la last activity, lp last preview, ld
--                             last direction (in|out), n messages, un unread,
--                             li guest's last message in it, as assignee,
--                             sr service request, md metadata (JSON), rs
--                             resolution (JSON), rda read at
--   cvh:<tenant>:<id>   list  history entries (JSON), oldest first
-- A conversation's keys hold its tenant: ids are the tenant's own names
-- (callers may choose them), so one tenant's id never meets another's.
--   cvi:<tenant>        zset  the tenant's conversations by last activity
--   cvg:<sender>:<guest> zset the guest's conversations by creation time
--   notify              stream conversation, inbound and opt-out events for
--                             client webhooks
-- Their keys are built from the shard prefix the caller passes (same slot).

-- HISTORY_MAX bounds a conversation's history list.
local HISTORY_MAX = 5000

local function guest_key(prefix, sender, guest)
  return prefix .. 'g:' .. sender .. ':' .. guest
end

-- guest_refusal says why guest may not get a message now: 'optout' (and
-- since when, how), 'window' (and the last inbound time, '' if none) when
-- check_window and the 24-hour window is closed, or nil.
local function guest_refusal(g, now, window_ms, check_window)
  local v = redis.call('HMGET', g, 'oo', 'ooa', 'oos', 'li')
  if v[1] == '1' then
    return 'optout', v[2] or '', v[3] or ''
  end
  if check_window then
    local li = tonumber(v[4] or '0') or 0
    if li == 0 or tonumber(now) - li >= window_ms then
      return 'window', v[4] or '', ''
    end
  end
  return nil
end

-- keep_guest renews a guest's hash, unless it holds an opt-out, which is
-- kept for good. oo is the hash's opt-out flag when the caller has read it
-- already (false: not opted out), nil to read it here.
local function keep_guest(g, ttl, oo)
  if oo == nil then
    oo = redis.call('HGET', g, 'oo') == '1'
  end
  if not oo then
    redis.call('EXPIRE', g, ttl)
  end
end

-- RENEW_MS: a conversation active within this time had its keys' TTLs
-- (and its guest's) renewed then, so a message now leaves them be: they
-- expire between TTL - RENEW_MS and TTL after the last activity, and a
-- send to a guest spoken to lately saves four EXPIREs.
local RENEW_MS = 3600000

-- notify appends a client-webhook event of kind k to the shard's notify
-- stream; d is its JSON data.
local function notify(prefix, k, tenant, sender, guest, conv, at, d)
  redis.call('XADD', prefix .. 'notify', '*', 'k', k, 't', tenant, 'f', sender, 'g', guest,
    'c', conv or '', 'ts', at, 'd', d or '{}')
end

-- conv_key is conversation id's hash of tenant.
local function conv_key(prefix, tenant, id)
  return prefix .. 'cv:' .. tenant .. ':' .. id
end

-- conv_api_status is the status the API shows (ingest/conversations.go's
-- convStatus) for a conversation in stored state st whose guest's hash is
-- g and whose own last inbound message was at conv_li: closed and archived
-- as they are; an open one is active while the guest's 24-hour window is
-- (window_ms), initiated until the guest first writes in it, else expired.
local function conv_api_status(g, st, conv_li, now, window_ms)
  if st ~= 'open' then return st end
  local li = tonumber(redis.call('HGET', g, 'li') or '0') or 0
  if li > 0 and tonumber(now) < li + window_ms then return 'active' end
  if (tonumber(conv_li or '0') or 0) == 0 then return 'initiated' end
  return 'expired'
end

-- conv_create makes conversation id holding its first message (inbox
-- preview, direction dir: in|out) and files it under the guest's
-- conversations (cvg:<sender>:<guest>, a zset by creation time); conv_add
-- with created set then only appends the history entry.
local function conv_create(prefix, id, tenant, sender, guest, now, preview, dir)
  redis.call('HSET', conv_key(prefix, tenant, id), 't', tenant, 'f', sender, 'g', guest, 'st', 'open',
    'ca', now, 'la', now, 'lp', preview, 'ld', dir, 'n', 1, 'un', 0)
  redis.call('ZADD', prefix .. 'cvg:' .. sender .. ':' .. guest, now, id)
end

-- conv_outbound finds the conversation an outbound message joins: want
-- (the caller's id) when given, else the guest's current one, else a new
-- one named newid, holding preview. An archived conversation opens again.
-- Returns the id, whether it was created and whether it was active within
-- RENEW_MS (see conv_add), or nil and why not: 'conv_other' (want is
-- another guest's or number's) or 'conv_closed'.
local function conv_outbound(prefix, g, tenant, sender, guest, want, newid, now, preview)
  local id = want
  if id == '' then
    id = redis.call('HGET', g, 'cv') or ''
  end
  if id ~= '' then
    local ck = conv_key(prefix, tenant, id)
    local c = redis.call('HMGET', ck, 't', 'f', 'g', 'st', 'la')
    if c[1] then
      if c[1] ~= tenant or c[2] ~= sender or c[3] ~= guest then
        if want ~= '' then return nil, 'conv_other' end
        id = ''
      elseif c[4] == 'closed' then
        if want ~= '' then return nil, 'conv_closed' end
        id = ''
      else
        if c[4] == 'archived' then
          redis.call('HSET', ck, 'st', 'open')
        end
        if want ~= '' then redis.call('HSET', g, 'cv', id) end
        return id, false, tonumber(now) - (tonumber(c[5] or '0') or 0) < RENEW_MS
      end
    elseif want == '' then
      id = ''
    end
  end
  if id == '' then id = newid end
  conv_create(prefix, id, tenant, sender, guest, now, preview, 'out')
  redis.call('HSET', g, 'cv', id)
  return id, true, false
end

-- conv_add appends entry (JSON) to conversation id of sender and guest:
-- its history, its summary (already written when created) and its place
-- in the tenant's index; the keys' TTLs are renewed unless fresh (active
-- within RENEW_MS).
local function conv_add(prefix, id, tenant, sender, guest, entry, preview, dir, now, ttl, created, fresh)
  local ck = conv_key(prefix, tenant, id)
  local hk = prefix .. 'cvh:' .. tenant .. ':' .. id
  if not created then
    redis.call('HSET', ck, 'la', now, 'lp', preview, 'ld', dir)
    redis.call('HINCRBY', ck, 'n', 1)
  end
  if redis.call('RPUSH', hk, entry) > HISTORY_MAX then
    redis.call('LTRIM', hk, -HISTORY_MAX, -1)
  end
  redis.call('ZADD', prefix .. 'cvi:' .. tenant, now, id)
  if not fresh then
    redis.call('EXPIRE', ck, ttl)
    redis.call('EXPIRE', hk, ttl)
    redis.call('EXPIRE', prefix .. 'cvg:' .. sender .. ':' .. guest, ttl)
  end
end

-- conv_meta merges a JSON object of strings into the conversation's metadata.
local function conv_meta(prefix, tenant, id, md)
  if md == '' then return end
  local ck = conv_key(prefix, tenant, id)
  local cur = redis.call('HGET', ck, 'md')
  local m = {}
  if cur then m = cjson.decode(cur) end
  for k, v in pairs(cjson.decode(md)) do m[k] = v end
  redis.call('HSET', ck, 'md', cjson.encode(m))
end

-- conv_id_for derives a conversation id from a message id: unique, and on
-- the message's shard like every id ("msg_X_7" → "conv_X_7").
local function conv_id_for(msgid)
  return 'conv_' .. string.sub(msgid, 5)
end

-- out_entry is the history entry of an outbound message.
local function out_entry(id, now, ty, preview, staff)
  return cjson.encode({d = 'out', id = id, at = tonumber(now), ty = ty, p = preview, sm = staff})
end
