-- enqueue.lua: accept the single sends of one shard that one flush of the
-- API's group commit carries and that are to go now, each on its own terms
-- (lib.lua's accept: idempotency, the guest's opt-out and 24-hour window,
-- the conversation it joins, found or made now so that its id can be
-- answered), each as one send record (reccodec.go) written where its
-- readers look: the shard's pending hash (until the dispatcher makes the
-- message's state from it, begin.lua), and the call's one events entry and
-- one file entry (lib.lua's gathered), in which the record is the "queued"
-- event and the entry that files the message; one queue entry per queue
-- and call names the messages. So a call writes O(1) keys and stream
-- entries per shard and queue, not four per message; the counters the
-- messages share (tenants' open counts, wake-ups) are written once.
-- Scheduled sends go through schedule.lua.
--
-- KEYS[1] the events stream of the first message's shard (wa:{sNN}:events):
--         it names the slot the call goes to. On a Redis Cluster every
--         message of a call is of that shard; on one server a call may
--         carry messages of several shards. Every key is built from the
--         message's shard prefix.
--
-- ARGV[1] idempotency TTL (s)  ARGV[2] window (ms)
-- ARGV[3] conversation TTL (s)
-- then ENQ_FIELDS per message, from ARGV[4]:
--   +0  shard prefix (wa:{sNN}:)
--   +1  message id             +2  now (unix ms)
--   +3  tenant                 +4  sender
--   +5  recipient
--   +6  queue stream key       wa:{sNN}:q:<sender>:tx|b:<campaign>
--   +7  the queue's registration, "<lane>\t<campaign>"
--   +8  conversation asked for ('' none)
--   +9  flags: 'w' the message needs the window open, 'f' send even to an
--       opted-out guest (the opt-out confirmation), '' neither
--   +10 idempotency key        wa:{sNN}:idem:<tenant>:<key>, or ''
--   +11 request fingerprint
--   +12 the send record's head, +13 its tail (reccodec.go): the record is
--       head .. made .. conversation .. tail
--   +14 its queue entry's part: "<id>\t<recipient>\t<1: has a fallback
--       text, else 0>"
--
-- Answers four values per message: 'ok', its id, conversation, 'queued';
-- lib.lua's accept's refusal; or 'error' and why, when its own step failed
-- (a key of the wrong type: no code of ours writes one): the call's other
-- messages go on. A queue entry is "n" (how many messages) and "s" (their
-- parts, one per line); the records wait in the pending hash, with no TTL:
-- a message waits as long as it must.
local ENQ_FIELDS = 15
local idemttl, window, convttl = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
-- What the call writes once per shard (by shard prefix): the pending
-- records, the queues' entries, tenants' open counts and senders to wake.
local shards, per = {}, {}
CALLREC = {}

for b = 4, #ARGV, ENQ_FIELDS do
  local prefix, id, now = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  local tenant, sender = ARGV[b + 3], ARGV[b + 4]
  local ok, conv, created = pcall(accept, prefix, id, now, tenant, sender, ARGV[b + 5], ARGV[b + 8], ARGV[b + 9],
    ARGV[b + 10], ARGV[b + 11], idemttl, window, convttl)
  if not ok then
    created = {'error', tostring(conv), '', ''}
    conv = nil
  end
  if not conv then
    answer4(out, unpack(created))
  else
    local nw = '1:0'
    if created then nw = '1:1' end
    local v = ARGV[b + 12] .. nw .. #conv .. ':' .. conv .. ARGV[b + 13]
    CALLREC[id] = v
    local sh = per[prefix]
    if not sh then
      sh = {pend = {}, recs = {}, queues = {}, qlist = {}, tq = {}, tenants = {}, woken = {}, senders = {}}
      per[prefix] = sh
      shards[#shards + 1] = prefix
    end
    sh.pend[#sh.pend + 1] = id
    sh.pend[#sh.pend + 1] = v
    sh.recs[#sh.recs + 1] = v
    local queue = ARGV[b + 6]
    local q = sh.queues[queue]
    if not q then
      q = {sender = sender, reg = ARGV[b + 7]}
      sh.queues[queue] = q
      sh.qlist[#sh.qlist + 1] = queue
    end
    q[#q + 1] = ARGV[b + 14]
    if not sh.tq[tenant] then
      sh.tq[tenant] = 0
      sh.tenants[#sh.tenants + 1] = tenant
    end
    sh.tq[tenant] = sh.tq[tenant] + 1
    if not sh.woken[sender] then
      sh.woken[sender] = true
      sh.senders[#sh.senders + 1] = sender
    end
    answer4(out, 'ok', id, conv, 'queued')
  end
end

for _, prefix in ipairs(shards) do
  local sh = per[prefix]
  -- HSET in slices: unpack takes at most a few thousand values.
  for j = 1, #sh.pend, 2000 do
    redis.call('HSET', prefix .. 'pend', unpack(sh.pend, j, math.min(j + 1999, #sh.pend)))
  end
  for _, queue in ipairs(sh.qlist) do
    local q = sh.queues[queue]
    local parts = table.concat(q, '\n')
    -- The queue is there but for a sender's first message (or the first
    -- after it was collected empty): no EXISTS per call.
    if not redis.call('XADD', queue, 'NOMKSTREAM', '*', 'n', #q, 's', parts) then
      ensure_queue(queue, prefix .. 'senders', prefix .. 'queues:' .. q.sender, q.sender, q.reg)
      redis.call('XADD', queue, '*', 'n', #q, 's', parts)
    end
  end
  for _, t in ipairs(sh.tenants) do
    redis.call('HINCRBY', prefix .. 'tq', t, sh.tq[t])
  end
  for _, s in ipairs(sh.senders) do
    wake(prefix .. 'wake', prefix .. 'awake', s)
  end
  -- The records are the messages' "queued" events and file entries, once
  -- the messages are there to be found (each record delimits itself).
  local recs = table.concat(sh.recs)
  emit_raw(prefix .. 'events', recs)
  emit_raw(prefix .. 'file', recs)
end
return out
