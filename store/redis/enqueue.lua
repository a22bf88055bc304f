-- enqueue.lua: accept the messages of one shard that one flush of the
-- API's group commit carries, each on its own terms: idempotency, the
-- guest's opt-out and 24-hour window, the conversation it joins (found, or
-- made now so that its id can be answered), the state, the queue entry,
-- the "queued" event and the entry that files it into its conversation
-- later (the filer, file.lua). One call per shard per flush: the call's fixed
-- cost and the counters every message shares (tenants' open counts,
-- wake-ups, queue registrations) are paid once.
--
-- KEYS[1] the events stream of the first message's shard (wa:{sNN}:events):
--         it names the slot the call goes to. On a Redis Cluster every
--         message of a call is of that shard; on one server a call may
--         carry messages of several shards. Every key is built from the
--         message's shard prefix.
--
-- ARGV[1] state TTL (s)        ARGV[2] idempotency TTL (s)
-- ARGV[3] window (ms)          ARGV[4] conversation TTL (s)
-- then ENQ_FIELDS per message, from ARGV[5]:
--   +0  shard prefix (wa:{sNN}:)
--   +1  message id             +2  now (unix ms)
--   +3  tenant                 +4  sender
--   +5  recipient              +6  type
--   +7  content (Meta's object, JSON)
--   +8  lane (tx, bulk)        +9  campaign
--   +10 queue stream key       wa:{sNN}:q:<sender>:tx|b:<campaign>
--   +11 conversation asked for ('' none)
--   +12 staff member id        +13 due (unix ms; > now: scheduled)
--   +14 expires (unix ms, 0 never)
--   +15 fallback text          +16 fallback after (s, 0 on failure only)
--   +17 flags: 'w' the message needs the window open, 'f' send even to an
--       opted-out guest (the opt-out confirmation), '' neither
--   +18 idempotency key        wa:{sNN}:idem:<tenant>:<key>, or ''
--   +19 request fingerprint
--   +20 the file entry, packed (filecodec.go) up to its conversation
--   +21 the "queued" event's head, packed (eventcodec.go, version 2)
--   +22, +23 its static part (the state keeps it as "ev" and "ev2", for the
--       message's later events) before and after its conversation id
--   +24 the template's name ('' for other messages), for analytics
--
-- A queued message's state gets its TTL when the dispatcher first takes
-- it (begin.lua): it waits as long as it must, and writing the TTL here
-- would cost every send a command.
--
local ENQ_FIELDS = 25
local statettl, idemttl = ARGV[1], ARGV[2]
local window, convttl = tonumber(ARGV[3]), ARGV[4]
local out = {}
-- What the call's messages of one shard share, written once at the end:
-- tenants' open counts, the senders to wake and the earliest scheduled
-- send (its due tells the housekeeping), by shard prefix.
local shards, tq, woken = {}, {}, {}
local function answer(a, b, c, d)
  out[#out + 1] = a
  out[#out + 1] = b
  out[#out + 1] = c
  out[#out + 1] = d
end

for b = 5, #ARGV, ENQ_FIELDS do
  local prefix = ARGV[b]
  local base = b + 1
  local id, now, tenant, sender = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local guest, ty, lane, campaign = ARGV[base + 4], ARGV[base + 5], ARGV[base + 7], ARGV[base + 8]
  local queue, flags, idem = ARGV[base + 9], ARGV[base + 16], ARGV[base + 17]
  local done = false
  if idem ~= '' then
    local prev = redis.call('GET', idem)
    if prev then
      local sep = string.find(prev, '\n', 1, true)
      local first = string.sub(prev, 1, sep - 1)
      if string.sub(prev, sep + 1) ~= ARGV[base + 18] then
        answer('conflict', first, '', '')
      else
        local m = redis.call('HMGET', prefix .. 'msg:' .. first, 'st', 'c')
        answer('dup', first, m[2] or '', m[1] or '')
      end
      done = true
    end
  end
  local g, gv, conv, created
  if not done then
    g = prefix .. 'g:' .. sender .. ':' .. guest
    gv = redis.call('HMGET', g, unpack(GUEST_FIELDS))
    if not string.find(flags, 'f', 1, true) then
      local why, a, b = guest_refusal(gv, now, window, string.find(flags, 'w', 1, true) ~= nil)
      if why then
        answer(why, a, b or '', '')
        done = true
      end
    end
  end
  if not done then
    conv, created = conv_outbound(prefix, g, gv, tenant, sender, guest, ARGV[base + 10],
      'conv_' .. string.sub(id, 5), now, convttl)
    if not conv then
      answer(created, '', '', '')
      done = true
    end
  end
  if not done then
    if idem ~= '' then
      redis.call('SET', idem, id .. '\n' .. ARGV[base + 18], 'EX', idemttl)
    end
    local due = tonumber(ARGV[base + 12])
    local status, ttl = 'queued', tonumber(statettl)
    if due > tonumber(now) then
      status = 'scheduled'
      ttl = ttl + math.ceil((due - tonumber(now)) / 1000)
    end
    local fbtext = ARGV[base + 14]
    -- Fields left empty are not written (readers take a missing field as
    -- empty, and attempts as 0).
    local st = {'st', status, 't', tenant, 'f', sender, 'r', guest,
      'ty', ty, 'b', ARGV[base + 6], 'l', lane, 'c', conv, 'qa', now}
    if ARGV[base + 11] ~= '' then st[#st + 1] = 'sm'; st[#st + 1] = ARGV[base + 11] end
    if campaign ~= '' then st[#st + 1] = 'cp'; st[#st + 1] = campaign end
    if ARGV[base + 13] ~= '0' then st[#st + 1] = 'x'; st[#st + 1] = ARGV[base + 13] end
    if fbtext ~= '' then st[#st + 1] = 'ft'; st[#st + 1] = fbtext end
    if ARGV[base + 15] ~= '0' then st[#st + 1] = 'fas'; st[#st + 1] = ARGV[base + 15] end
    if status == 'scheduled' then st[#st + 1] = 'due'; st[#st + 1] = ARGV[base + 12] end
    if ARGV[base + 23] ~= '' then st[#st + 1] = 'tn'; st[#st + 1] = ARGV[base + 23] end
    -- The static part in two fields, each short enough for Redis's compact
    -- hash encoding: the message's state stays a listpack.
    local ev, ev2 = ARGV[base + 21], #conv .. ':' .. conv .. ARGV[base + 22]
    st[#st + 1] = 'ev'
    st[#st + 1] = ev
    st[#st + 1] = 'ev2'
    st[#st + 1] = ev2
    local msg = prefix .. 'msg:' .. id
    redis.call('HSET', msg, unpack(st))
    if status == 'scheduled' then
      redis.call('EXPIRE', msg, ttl)
    end
    local sq = tq[prefix]
    if not sq then
      sq = {tenants = {}}
      tq[prefix] = sq
      woken[prefix] = {list = {}}
      shards[#shards + 1] = prefix
    end
    if not sq[tenant] then
      sq[tenant] = 0
      sq.tenants[#sq.tenants + 1] = tenant
    end
    sq[tenant] = sq[tenant] + 1
    local fb = '0'
    if fbtext ~= '' then fb = '1' end
    local regval = lane .. '\t' .. campaign
    if status == 'scheduled' then
      redis.call('ZADD', prefix .. 'delay', due,
        id .. '\n' .. queue .. '\n' .. guest .. '\n' .. sender .. '\n' .. regval .. '\n' .. fb)
      local w = woken[prefix]
      if not w.due or due < w.due then w.due = due end
    else
      -- The queue is there but for a sender's first message (or the
      -- first after it was collected empty): no EXISTS per call.
      if not redis.call('XADD', queue, 'NOMKSTREAM', '*', 'id', id, 'r', guest, 'fb', fb) then
        ensure_queue(queue, prefix .. 'senders', prefix .. 'queues:' .. sender, sender, regval)
        redis.call('XADD', queue, '*', 'id', id, 'r', guest, 'fb', fb)
      end
      local w = woken[prefix]
      if not w[sender] then
        w[sender] = true
        w.list[#w.list + 1] = sender
      end
    end
    file_add(prefix, ARGV[base + 19], conv, created)
    emit_raw(prefix .. 'events', ARGV[base + 20] .. ev .. ev2)
    answer('ok', id, conv, status)
  end
end

for _, prefix in ipairs(shards) do
  local sq = tq[prefix]
  for _, t in ipairs(sq.tenants) do
    redis.call('HINCRBY', prefix .. 'tq', t, sq[t])
  end
  for _, s in ipairs(woken[prefix].list) do
    wake(prefix .. 'wake', prefix .. 'awake', s)
  end
  if woken[prefix].due then
    -- The owner's housekeeping sleeps until its next due send: tell it of
    -- an earlier one (once per call and shard, the earliest).
    redis.call('XADD', prefix .. 'wake', 'MAXLEN', '~', 1000, '*', 'd', string.format('%d', woken[prefix].due))
  end
end
return out
