-- schedule.lua: accept the scheduled sends (due later) of one shard that
-- one flush of the API's group commit carries, each on its own terms
-- (lib.lua's accept: idempotency, the guest's opt-out and 24-hour window,
-- the conversation it joins), each with its state hash, its delay entry
-- (promote.lua queues it when due), its "scheduled" event and the entry
-- that files it into its conversation. Sends to go now take enqueue.lua's
-- send records instead.
--
-- KEYS[1] the events stream of the first message's shard (as enqueue.lua)
--
-- ARGV[1] state TTL (s)        ARGV[2] idempotency TTL (s)
-- ARGV[3] window (ms)          ARGV[4] conversation TTL (s)
-- then SCHED_FIELDS per message, from ARGV[5]:
--   +0  shard prefix (wa:{sNN}:)
--   +1  message id             +2  now (unix ms)
--   +3  tenant                 +4  sender
--   +5  recipient              +6  type
--   +7  content (Meta's object, JSON)
--   +8  lane (tx, bulk)        +9  campaign
--   +10 queue stream key       wa:{sNN}:q:<sender>:tx|b:<campaign>
--   +11 conversation asked for ('' none)
--   +12 staff member id        +13 due (unix ms, > now)
--   +14 expires (unix ms, 0 never)
--   +15 fallback text          +16 fallback after (s, 0 on failure only)
--   +17 flags (as enqueue.lua's)
--   +18 idempotency key        wa:{sNN}:idem:<tenant>:<key>, or ''
--   +19 request fingerprint
--   +20 the file entry, packed (filecodec.go) up to its conversation
--   +21 the "scheduled" event's head, packed (eventcodec.go, version 2)
--   +22, +23 its static part (the state keeps it as "ev" and "ev2", for the
--       message's later events) before and after its conversation id
--   +24 the template's name ('' for other messages), for analytics
local SCHED_FIELDS = 25
local statettl, idemttl = ARGV[1], ARGV[2]
local window, convttl = tonumber(ARGV[3]), ARGV[4]
local out = {}
-- Tenants' open counts and the earliest due, by shard prefix, written once.
local shards, tq, earliest = {}, {}, {}

for b = 5, #ARGV, SCHED_FIELDS do
  local prefix = ARGV[b]
  local base = b + 1
  local id, now, tenant, sender = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3]
  local guest, lane, campaign = ARGV[base + 4], ARGV[base + 7], ARGV[base + 8]
  local conv, created = accept(prefix, id, now, tenant, sender, guest, ARGV[base + 10], ARGV[base + 16],
    ARGV[base + 17], ARGV[base + 18], idemttl, window, convttl)
  if not conv then
    answer4(out, unpack(created))
  else
    local due = tonumber(ARGV[base + 12])
    local fbtext = ARGV[base + 14]
    -- Fields left empty are not written (readers take a missing field as
    -- empty, and attempts as 0).
    local st = {'st', 'scheduled', 't', tenant, 'f', sender, 'r', guest,
      'ty', ARGV[base + 5], 'b', ARGV[base + 6], 'l', lane, 'c', conv, 'qa', now, 'due', ARGV[base + 12]}
    if ARGV[base + 11] ~= '' then st[#st + 1] = 'sm'; st[#st + 1] = ARGV[base + 11] end
    if campaign ~= '' then st[#st + 1] = 'cp'; st[#st + 1] = campaign end
    if ARGV[base + 13] ~= '0' then st[#st + 1] = 'x'; st[#st + 1] = ARGV[base + 13] end
    if fbtext ~= '' then st[#st + 1] = 'ft'; st[#st + 1] = fbtext end
    if ARGV[base + 15] ~= '0' then st[#st + 1] = 'fas'; st[#st + 1] = ARGV[base + 15] end
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
    redis.call('EXPIRE', msg, tonumber(statettl) + math.ceil((due - tonumber(now)) / 1000))
    if not tq[prefix] then
      tq[prefix] = {tenants = {}}
      shards[#shards + 1] = prefix
    end
    local sq = tq[prefix]
    if not sq[tenant] then
      sq[tenant] = 0
      sq.tenants[#sq.tenants + 1] = tenant
    end
    sq[tenant] = sq[tenant] + 1
    local fb = '0'
    if fbtext ~= '' then fb = '1' end
    redis.call('ZADD', prefix .. 'delay', due,
      id .. '\n' .. ARGV[base + 9] .. '\n' .. guest .. '\n' .. sender .. '\n' .. lane .. '\t' .. campaign .. '\n' .. fb)
    if not earliest[prefix] or due < earliest[prefix] then earliest[prefix] = due end
    file_add(prefix, ARGV[base + 19], conv, created)
    emit_raw(prefix .. 'events', ARGV[base + 20] .. ev .. ev2)
    answer4(out, 'ok', id, conv, 'scheduled')
  end
end

for _, prefix in ipairs(shards) do
  local sq = tq[prefix]
  for _, t in ipairs(sq.tenants) do
    redis.call('HINCRBY', prefix .. 'tq', t, sq[t])
  end
  -- The owner's housekeeping sleeps until its next due send: tell it of
  -- an earlier one (once per call and shard, the earliest).
  redis.call('XADD', prefix .. 'wake', 'MAXLEN', '~', 1000, '*', 'd', string.format('%d', earliest[prefix]))
end
return out
