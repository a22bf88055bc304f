-- lib.lua: what wagate's Redis functions share. functions.go makes one
-- library of it and every function's source (FUNCTION LOAD once per
-- server), so these locals are defined once, not sent with each call.
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
-- order emit_with takes them: ev and ev2, its static part packed (kept
-- by the accept path), are all a version 2 event needs of them; the rest
-- serve a state written before there was ev.
local EVENT_FIELDS = {'t', 'f', 'r', 'ty', 'l', 'c', 'sm', 'a', 'cp', 'tn', 'ev', 'ev2'}

-- packed is one value of a packed event, "<length>:<bytes>" (eventcodec.go);
-- a number is written whole, never in exponent form.
local function packed(v)
  if not v then return '0:' end
  if type(v) == 'number' then v = string.format('%d', v) end
  return #v .. ':' .. v
end

-- make_ev packs the static part of a message's events (eventcodec.go's
-- version 2), which its state keeps in two fields so that each stays
-- short enough for Redis's compact hash encoding (64 bytes by default):
-- ev (tenant, sender, recipient, type, lane) and ev2 (conversation, staff
-- member, campaign, template name).
local function make_ev(t, f, r, ty, l, c, sm, cp, tn)
  return packed(t) .. packed(f) .. packed(r) .. packed(ty) .. packed(l), packed(c) .. packed(sm) .. packed(cp) .. packed(tn)
end

-- provider_part packs an event's channel and provider values (ch p pid ec
-- et pc b pcv pm pt) from f's fields of those names.
local function provider_part(f)
  return packed(f.ch) .. packed(f.p) .. packed(f.pid) .. packed(f.ec) .. packed(f.et) .. packed(f.pc) ..
    packed(f.b) .. packed(f.pcv) .. packed(f.pm) .. packed(f.pt)
end

-- EMPTY_PROVIDER_PART is provider_part before a provider answered: the
-- channel (whatsapp) and nine empty values (eventcodec.go's
-- emptyProviderPart).
local EMPTY_PROVIDER_PART = '8:whatsapp0:0:0:0:0:0:0:0:0:'

-- EVBUF holds, while a function gathers its events (gathered), each events
-- (and file) stream's entries of the call and EVKEYS those streams in
-- order: they go out as one entry per stream and call, the values
-- concatenated (eventcodec.go, filecodec.go: each delimits itself), so a
-- call of many messages costs one XADD per stream, not one per message,
-- and the readers read and acknowledge one entry. nil: each is an entry
-- of its own.
local EVBUF, EVKEYS = nil, nil

-- CALLREC holds, while enqueue.lua runs, the send records it accepted so
-- far by message id: they reach the pending hash at the end of the call,
-- and a later message of the same call (a repeat of an Idempotency-Key, a
-- send naming a conversation an earlier one made) reads them here first
-- (pending_record). gathered clears it, also when the call fails.
local CALLREC = nil

-- emit_raw appends event e, packed, to stream events (or to the call's
-- gathered ones).
local function emit_raw(events, e)
  if not EVBUF then
    redis.call('XADD', events, '*', 'e', e)
    return
  end
  local b = EVBUF[events]
  if not b then
    b = {}
    EVBUF[events] = b
    EVKEYS[#EVKEYS + 1] = events
  end
  b[#b + 1] = e
end

-- gathered runs body with its events gathered (EVBUF) and writes them at
-- its end, also when body fails (a function's writes are not undone by an
-- error: the events of those done are kept with them), then answers as
-- body did or raises its error.
local function gathered(body)
  EVBUF, EVKEYS = {}, {}
  local ok, r = pcall(body)
  local buf, keys = EVBUF, EVKEYS
  EVBUF, EVKEYS, CALLREC = nil, nil, nil
  for _, k in ipairs(keys) do
    redis.call('XADD', k, '*', 'e', table.concat(buf[k]))
  end
  if not ok then error(r, 0) end
  return r
end

-- emit_packed appends one event, packed (eventcodec.go, version 2): the
-- message id, status, time and attempt, then x (provider_part), ev and ev2
-- (make_ev) as they are: a few concatenated strings.
local function emit_packed(events, id, status, at, attempt, x, ev, ev2)
  if not attempt or attempt == '' then attempt = '0' end
  emit_raw(events, '2' .. packed(id) .. packed(status) .. packed(at) .. packed(attempt) .. x .. ev .. ev2)
end

-- emit_with appends one event of message id to the events stream: m holds
-- the message's EVENT_FIELDS (tenant, sender, recipient, type, lane,
-- conversation, staff member, attempt, campaign, template name, ev, ev2), then
-- status, time and extra field/value pairs (provider, error…).
local function emit_with(events, id, m, status, at, extra)
  local ev, ev2 = m[11], m[12]
  if not ev or not ev2 then ev, ev2 = make_ev(m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[9], m[10]) end
  local x = {}
  for i = 1, #extra, 2 do
    x[extra[i]] = extra[i + 1]
  end
  emit_packed(events, id, status, at, m[8], provider_part(x), ev, ev2)
end

-- emit is emit_with for a message whose fields are read from its hash.
local function emit(events, msgkey, status, at, extra)
  emit_with(events, message_id(msgkey), redis.call('HMGET', msgkey, unpack(EVENT_FIELDS)), status, at, extra)
end

-- record_values returns the first n values of send record v (reccodec.go:
-- '3', then "<length>:<bytes>" values) and where each starts (its length
-- included; pos[n + 1] is where the next would), or nil when v is not one.
local function record_values(v, n)
  local out, at, pos = {}, {}, 2
  for i = 1, n do
    local colon = string.find(v, ':', pos, true)
    if not colon then return nil end
    local len = tonumber(string.sub(v, pos, colon - 1))
    if not len then return nil end
    at[i] = pos
    out[i] = string.sub(v, colon + 1, colon + len)
    pos = colon + 1 + len
  end
  at[n + 1] = pos
  return out, at
end

-- RECORD_VALUES is how many values a send record holds (reccodec.go):
-- m s ts t f r ty l nw c sm cp tn b x ft fas p md.
local RECORD_VALUES = 19

-- materialize_send makes the state "queued" of a single send from its send
-- record, which it takes out of the shard's pending hash; false when the
-- record is not there (the message was made and has gone since). The
-- record's values from the tenant to the lane, and from the conversation
-- to the template, are the state's "ev" and "ev2" as they are. Returns the
-- state's fields as begin.lua reads them (BEGIN_FIELDS).
local function materialize_send(msgkey, prefix)
  local pk, id = prefix .. 'pend', message_id(msgkey)
  local v = redis.call('HGET', pk, id)
  if not v then return false end
  redis.call('HDEL', pk, id)
  -- A record no code of ours wrote is dropped, as gone.
  local r, at = record_values(v, RECORD_VALUES)
  if not r then return false end
  local ev, ev2 = string.sub(v, at[4], at[9] - 1), string.sub(v, at[10], at[14] - 1)
  local st = {'st', 'queued', 't', r[4], 'f', r[5], 'r', r[6], 'ty', r[7], 'b', r[14], 'l', r[8],
    'c', r[10], 'qa', r[3], 'ev', ev, 'ev2', ev2}
  local function opt(k, v, none)
    if v == none then return nil end
    st[#st + 1] = k
    st[#st + 1] = v
    return v
  end
  local sm, x, ft, fas = opt('sm', r[11], ''), opt('x', r[15], '0'), opt('ft', r[16], ''), opt('fas', r[17], '0')
  local cp, tn = opt('cp', r[12], ''), opt('tn', r[13], '')
  redis.call('HSET', msgkey, unpack(st))
  -- st t f r ty b l c sm qa tc ab ft fas x ma rd cp tn ev (a) ev2
  return {'queued', r[4], r[5], r[6], r[7], r[14], r[8], r[10], sm, r[3], nil, nil,
    ft, fas, x, nil, nil, cp, tn, ev, nil, ev2}
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

-- status_fields are the state's fields a status brings besides st, as
-- field/value pairs (Go lays out the same for transition.lua:
-- store/redis/inbound.go's statusFields): a fallback's provider and id
-- (its own, the WhatsApp ones stay), else the provider and its id; the
-- pricing; the provider's conversation; a failure's error.
local function status_fields(new, f)
  local set = {}
  local function put(k, v)
    set[#set + 1] = k
    set[#set + 1] = v
  end
  if new == 'fallback' then
    put('fbp', f.p or '')
    put('fbid', f.pid or '')
    put('fbch', f.ch or '')
  else
    if (f.p or '') ~= '' then put('p', f.p) end
    if (f.pid or '') ~= '' then put('pid', f.pid) end
  end
  if (f.pc or '') ~= '' then
    put('pc', f.pc)
    put('bl', f.b or '')
    put('pm', f.pm or '')
    put('pt', f.pt or '')
  end
  if (f.pcv or '') ~= '' then put('pcv', f.pcv) end
  if new == 'failed' or new == 'expired' or new == 'canceled' then
    put('ec', f.ec or '')
    put('et', f.et or '')
  end
  return set
end

-- brings_news reports whether the fields a status brings (set, field/value
-- pairs) tell the state cur (as record reads it) something new: a
-- provider, its id, its pricing or its conversation. A repeated status may:
-- Meta's "sent" webhook, with the pricing, comes after the dispatcher
-- recorded "sent" from the provider's answer.
local function brings_news(set, cur)
  for i = 1, #set, 2 do
    local k, v = set[i], set[i + 1]
    if (k == 'p' and v ~= cur[12]) or (k == 'pid' and v ~= cur[13]) or (k == 'pc' and v ~= cur[14]) or
      (k == 'pcv' and v ~= cur[15]) then
      return true
    end
  end
  return false
end

-- record applies status new at time at to the message in msgkey, forward
-- only, and writes its event (the rules are in transition.lua). f holds the
-- provider's fields p, pid, ec, et, ch, pc, b, pcv, pm, pt; or, from
-- transition.lua, set holds the fields the status brings (status_fields)
-- and x its event's provider part (provider_part), as Go laid them out. A
-- message leaving the open statuses (queued, scheduled, sending) for good
-- is taken off its tenant's count in tq. A status seen before writes only
-- what it brings anew (brings_news), and one that changes nothing writes
-- nothing. Returns moved (0/1), first (0/1), the previous status
-- and what it read of the state (st qa sa da t a sg ev <time field> rd ev2
-- p pid pc pcv), and, when it wrote, the status's time as recorded (after
-- the earlier statuses'); or nil when the message is unknown.
local function record(msgkey, events, tq, new, at, f, ttl, set, x)
  -- The field of the time new is first reached is read with the rest: no
  -- HSETNX.
  local tf = AT_FIELD[new] or 'st'
  local function read()
    return redis.call('HMGET', msgkey, 'st', 'qa', 'sa', 'da', 't', 'a', 'sg', 'ev', tf, 'rd', 'ev2', 'p', 'pid', 'pc', 'pcv')
  end
  local cur = read()
  if not cur[1] then
    -- A single send not taken by the dispatcher yet has its send record
    -- only: its state is made first.
    if not materialize_send(msgkey, string.match(msgkey, '^(.*)msg:')) then
      return nil
    end
    cur = read()
  end
  local r = RANK[new]
  if r == nil then
    return 0, 0, cur[1], cur
  end
  local moves = r > RANK[cur[1]]
  local progress = new == 'sent' or new == 'delivered' or new == 'read' or new == 'fallback'
  if not moves and not progress then
    return 0, 0, cur[1], cur
  end
  -- A status's time is after those of the statuses it follows (a
  -- provider may answer within the millisecond of the "sending" event).
  at = tonumber(at) or 0
  local n = tonumber(cur[2])
  if n and n >= at then at = n + 1 end
  if r >= 2 then
    n = tonumber(cur[7])
    if n and n >= at then at = n + 1 end
  end
  if r >= 3 then
    n = tonumber(cur[3])
    if n and n >= at then at = n + 1 end
  end
  if r == 5 then
    n = tonumber(cur[4])
    if n and n >= at then at = n + 1 end
  end
  at = string.format('%d', at)

  local first = 0
  if AT_FIELD[new] and not cur[9] then
    first = 1
  end
  set = set or status_fields(new, f)
  if not moves and first == 0 and not brings_news(set, cur) then
    return 0, 0, cur[1], cur
  end
  if first == 1 then
    set[#set + 1] = tf
    set[#set + 1] = at
  end
  if moves then
    set[#set + 1] = 'st'
    set[#set + 1] = new
    if RANK[cur[1]] <= 1 and r >= 2 then
      redis.call('HINCRBY', tq, cur[5], -1)
    end
  end
  if #set > 0 then
    redis.call('HSET', msgkey, unpack(set))
  end
  redis.call('EXPIRE', msgkey, ttl)
  if first == 1 then
    local ev, ev2 = cur[8], cur[11]
    if not ev or not ev2 then
      -- A state from before ev: its static part from its fields.
      local m = redis.call('HMGET', msgkey, unpack(EVENT_FIELDS))
      ev, ev2 = make_ev(m[1], m[2], m[3], m[4], m[5], m[6], m[7], m[9], m[10])
    end
    emit_packed(events, message_id(msgkey), new, at, cur[6], x or provider_part(f), ev, ev2)
  end
  local moved = 0
  if moves then moved = 1 end
  return moved, first, cur[1], cur, at
end

-- Guests and conversations, all on the shard of the business number:
--   g:<sender>:<guest>  hash  cv current conversation, cvl the guest's
--                             conversations ("<id> <created ms>" pairs,
--                             oldest first, the newest CVL_MAX), li last
--                             inbound (ms), nm profile name, oo "1" opted
--                             out, ooa when, oos how (keyword, api)
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
--   file                stream messages accepted or received and not yet
--                             filed into their conversations (file.lua)
--   notify              stream conversation, inbound and opt-out events for
--                             client webhooks
-- Their keys are built from the shard prefix the caller passes (same slot).
--
-- What decides where a message goes (the guest's current conversation, a
-- new one, a closed one refused) is written when the message is accepted;
-- the rest (history, summary, unread, index, TTL renewals) is filed later
-- from the file stream, in the stream's order, in batches (file.lua).

-- HISTORY_MAX bounds a conversation's history list; CVL_MAX the
-- conversations a guest's hash lists.
local HISTORY_MAX = 5000
local CVL_MAX = 50

local function guest_key(prefix, sender, guest)
  return prefix .. 'g:' .. sender .. ':' .. guest
end

-- GUEST_FIELDS are what the accept path reads of a guest's hash, in the
-- order guest_refusal and conv_outbound take them.
local GUEST_FIELDS = {'oo', 'ooa', 'oos', 'li', 'cv', 'cvl'}

-- guest_refusal says why the guest whose GUEST_FIELDS are gv may not get a
-- message now: 'optout' (and since when, how), 'window' (and the last
-- inbound time, '' if none) when check_window and the 24-hour window is
-- closed, or nil.
local function guest_refusal(gv, now, window_ms, check_window)
  if gv[1] == '1' then
    return 'optout', gv[2] or '', gv[3] or ''
  end
  if check_window then
    local li = tonumber(gv[4] or '0') or 0
    if li == 0 or tonumber(now) - li >= window_ms then
      return 'window', gv[4] or '', ''
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
-- (and its guest's) renewed then, so filing a message now leaves them be:
-- they expire between TTL - RENEW_MS and TTL after the last activity.
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

-- cvl_add appends conversation id, created at now, to a guest's list of
-- conversations cvl ("<id> <ms>" pairs), keeping the newest CVL_MAX.
local function cvl_add(cvl, id, now)
  local out = id .. ' ' .. now
  if not cvl or cvl == '' then return out end
  out = cvl .. ' ' .. out
  if #out > CVL_MAX * 48 then
    local pairs_ = {}
    for cid, ms in string.gmatch(out, '(%S+) (%S+)') do pairs_[#pairs_ + 1] = cid .. ' ' .. ms end
    if #pairs_ > CVL_MAX then
      out = table.concat(pairs_, ' ', #pairs_ - CVL_MAX + 1, #pairs_)
    end
  end
  return out
end

-- conv_create makes conversation id of sender and guest, created now: the
-- guest's current conversation and list of conversations (with the guest's
-- TTL); gv holds the guest's GUEST_FIELDS. The conversation's hash is made
-- when its first message is filed (by the filer, file.lua), except with skeleton: a
-- caller-named id gets its hash at once, so that no other guest can take
-- the name meanwhile (ids wagate makes are unique by construction).
local function conv_create(prefix, g, gv, id, tenant, sender, guest, now, ttl, skeleton)
  if skeleton then
    local ck = conv_key(prefix, tenant, id)
    redis.call('HSET', ck, 't', tenant, 'f', sender, 'g', guest, 'st', 'open', 'ca', now, 'la', now, 'n', 0, 'un', 0)
    redis.call('EXPIRE', ck, ttl)
  end
  redis.call('HSET', g, 'cv', id, 'cvl', cvl_add(gv[6], id, now))
  if gv[1] ~= '1' then
    redis.call('EXPIRE', g, ttl)
  end
end

-- pending_record returns the values up to the conversation id (message id,
-- status, time, tenant, sender, recipient, type, lane, made, conversation)
-- of message id's send record while it waits in the shard's pending hash
-- (enqueue.lua), or nil.
local function pending_record(prefix, id)
  local v = CALLREC and CALLREC[id]
  if not v then v = redis.call('HGET', prefix .. 'pend', id) end
  if not v then return nil end
  return record_values(v, 10)
end

-- msg_owner returns the tenant, sender, recipient and conversation of
-- message id, from its state or, before it has one, its send record.
local function msg_owner(prefix, id)
  local m = redis.call('HMGET', prefix .. 'msg:' .. id, 't', 'f', 'r', 'c')
  if m[1] then return m[1], m[2], m[3], m[4] end
  local v = pending_record(prefix, id)
  if not v then return nil end
  return v[4], v[5], v[6], v[10]
end

-- made_id reports whether a conversation id has the shape of the ids
-- wagate makes ("conv_<time and random>_<shard>").
local function made_id(id)
  return string.match(id, '^conv_%w+_%d+$') ~= nil
end

-- conv_outbound finds the conversation an outbound message joins: want
-- (the caller's id) when given, else the guest's current one, else a new
-- one named newid (from the message's id). An archived conversation opens
-- again. A conversation made by a message not filed yet has no hash: it
-- is known by the guest's current one, or by the message that made it.
-- gv holds the guest's GUEST_FIELDS. Returns the id and whether it was
-- created, or nil and why not: 'conv_other' (want is another guest's or
-- number's) or 'conv_closed'.
local function conv_outbound(prefix, g, gv, tenant, sender, guest, want, newid, now, ttl)
  local id = want
  if id == '' then
    id = gv[5] or ''
  end
  if id ~= '' then
    local ck = conv_key(prefix, tenant, id)
    local c = redis.call('HMGET', ck, 't', 'f', 'g', 'st')
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
        if want ~= '' and gv[5] ~= want then redis.call('HSET', g, 'cv', id) end
        return id, false
      end
    elseif id == gv[5] then
      -- Not filed yet (or gone: filing makes it again).
      return id, false
    elseif want == '' then
      id = ''
    elseif made_id(want) then
      -- Perhaps made by a message accepted moments ago and not filed yet:
      -- that message says whose it is. Another tenant's is none of this
      -- one's business (its keys are the tenant's own): the name is free.
      local t, f, r, c = msg_owner(prefix, 'msg_' .. string.sub(want, 6))
      if c == want and t == tenant then
        if f ~= sender or r ~= guest then return nil, 'conv_other' end
        redis.call('HSET', g, 'cv', want)
        return want, false
      end
    end
  end
  if id == '' then
    conv_create(prefix, g, gv, newid, tenant, sender, guest, now, ttl, false)
    return newid, true
  end
  conv_create(prefix, g, gv, id, tenant, sender, guest, now, ttl, true)
  return id, true
end

-- answer4 appends one message's four answer values to out (the accept
-- functions answer each message with four).
local function answer4(out, a, b, c, d)
  out[#out + 1] = a
  out[#out + 1] = b
  out[#out + 1] = c
  out[#out + 1] = d
end

-- accept decides whether an outbound message may be accepted, as the
-- API's send does: a repeat of an idempotency key answers the first
-- message ('dup', its id, conversation and status) or refuses another
-- request under it ('conflict'); the guest's opt-out and 24-hour window
-- (flags: 'w' the message needs the window, 'f' send even to an opted-out
-- guest); then the conversation it joins (conv_outbound, want the one asked
-- for). On acceptance it keeps the idempotency key (value "<id>\n<fp>") and
-- returns the conversation and whether it was made; else nil and the four
-- values to answer.
local function accept(prefix, id, now, tenant, sender, guest, want, flags, idem, fp, idemttl, window, convttl)
  if idem ~= '' then
    local prev = redis.call('GET', idem)
    if prev then
      local sep = string.find(prev, '\n', 1, true)
      local first = string.sub(prev, 1, sep - 1)
      if string.sub(prev, sep + 1) ~= fp then
        return nil, {'conflict', first, '', ''}
      end
      local m = redis.call('HMGET', prefix .. 'msg:' .. first, 'st', 'c')
      if not m[1] then
        local v = pending_record(prefix, first)
        if v then m = {v[2], v[10]} end
      end
      return nil, {'dup', first, m[2] or '', m[1] or ''}
    end
  end
  local g = guest_key(prefix, sender, guest)
  local gv = redis.call('HMGET', g, unpack(GUEST_FIELDS))
  if not string.find(flags, 'f', 1, true) then
    local why, a, b = guest_refusal(gv, now, window, string.find(flags, 'w', 1, true) ~= nil)
    if why then return nil, {why, a, b or '', ''} end
  end
  local conv, created = conv_outbound(prefix, g, gv, tenant, sender, guest, want, 'conv_' .. string.sub(id, 5), now, convttl)
  if not conv then return nil, {created, '', '', ''} end
  if idem ~= '' then
    redis.call('SET', idem, id .. '\n' .. fp, 'EX', idemttl)
  end
  return conv, created
end

-- file_add appends a message to the shard's file stream, to be filed into
-- conversation conv by the filer: pre is its packed file entry as Go laid
-- it out (store/redis/filecodec.go) up to the conversation, which is added
-- here with whether the message made it.
local function file_add(prefix, pre, conv, created)
  local nw = '1:0'
  if created then nw = '1:1' end
  -- A call's file entries are gathered as its events are (one entry).
  emit_raw(prefix .. 'file', pre .. #conv .. ':' .. conv .. nw)
end

-- next_stream_id is the smallest stream id after id ("ms-seq").
local function next_stream_id(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return ms .. '-' .. string.format('%d', tonumber(seq) + 1)
end

-- materialize makes the state of a batch's message from the fields begin.lua
-- passes (ARGV, from ARGV[6]; msgkey its state hash): the guest's opt-out
-- and window, then the conversation, the state "queued" with the batch's
-- acceptance time, its "queued" event and its file entry. A message the
-- guest may not get is recorded "failed" with the reason (and taken off
-- the tenant's open count, which the chunk counted) and false returned;
-- else the state's fields as begin.lua reads them (BEGIN_FIELDS), so that
-- it need not read back what was just written.
local function materialize(msgkey, events, tq, a)
  local prefix, tenant, sender, guest, ty = a[6], a[7], a[8], a[9], a[10]
  local now, qa, campaign = a[1], a[13], a[12]
  -- A template's name, for analytics by template: Go lays a template out
  -- with its name first (message.Template.BuildSend).
  local tn = ''
  if ty == 'template' then tn = string.match(a[11], '^{"name":"([^"\\]*)"') or '' end
  local g = guest_key(prefix, sender, guest)
  local gv = redis.call('HMGET', g, unpack(GUEST_FIELDS))
  local id = message_id(msgkey)
  local why = guest_refusal(gv, now, tonumber(a[19]), a[18] == '1')
  if why then
    -- Its events in order even within the millisecond it was accepted in.
    if tonumber(now) <= tonumber(qa) then now = string.format('%d', tonumber(qa) + 1) end
    local ec, et = '', 'GUEST_OPTED_OUT: the guest has opted out of this number\'s messages'
    if why == 'window' then
      ec, et = '131047', 'MESSAGE_WINDOW_EXPIRED: free-form message outside the 24-hour window; use a template'
    end
    local st = {'st', 'failed', 't', tenant, 'f', sender, 'r', guest, 'ty', ty, 'b', a[11], 'l', 'bulk',
      'qa', qa, 'fa', now, 'ec', ec, 'et', et}
    if campaign ~= '' then st[#st + 1] = 'cp'; st[#st + 1] = campaign end
    if tn ~= '' then st[#st + 1] = 'tn'; st[#st + 1] = tn end
    redis.call('HSET', msgkey, unpack(st))
    redis.call('EXPIRE', msgkey, a[5])
    local m8 = {tenant, sender, guest, ty, 'bulk', '', '', '0', campaign, tn}
    emit_with(events, id, m8, 'queued', qa, {'ch', 'whatsapp'})
    emit_with(events, id, m8, 'failed', now, {'ch', 'whatsapp', 'ec', ec, 'et', et})
    redis.call('HINCRBY', tq, tenant, -1)
    return false
  end
  local conv, created = conv_outbound(prefix, g, gv, tenant, sender, guest, '', 'conv_' .. string.sub(id, 5), now, a[20])
  local ev, ev2 = make_ev(tenant, sender, guest, ty, 'bulk', conv, '', campaign, tn)
  local st = {'st', 'queued', 't', tenant, 'f', sender, 'r', guest, 'ty', ty, 'b', a[11], 'l', 'bulk',
    'c', conv, 'qa', qa, 'ev', ev, 'ev2', ev2}
  if campaign ~= '' then st[#st + 1] = 'cp'; st[#st + 1] = campaign end
  if a[14] ~= '0' then st[#st + 1] = 'x'; st[#st + 1] = a[14] end
  if a[15] ~= '' then st[#st + 1] = 'ft'; st[#st + 1] = a[15] end
  if a[16] ~= '0' then st[#st + 1] = 'fas'; st[#st + 1] = a[16] end
  if a[17] ~= '0' then st[#st + 1] = 'ma'; st[#st + 1] = a[17] end
  if tn ~= '' then st[#st + 1] = 'tn'; st[#st + 1] = tn end
  redis.call('HSET', msgkey, unpack(st))
  file_add(prefix, a[21], conv, created)
  emit_packed(events, id, 'queued', qa, '0', EMPTY_PROVIDER_PART, ev, ev2)
  local function given(v, none) if v ~= none then return v end return nil end
  -- st t f r ty b l c sm qa tc ab ft fas x ma rd cp tn ev (a) ev2
  return {'queued', tenant, sender, guest, ty, a[11], 'bulk', conv, nil, qa, nil, nil,
    given(a[15], ''), given(a[16], '0'), given(a[14], '0'), given(a[17], '0'), nil, given(campaign, ''), given(tn, ''), ev, nil, ev2}
end
