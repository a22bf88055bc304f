-- begin.lua: the shard's owner takes one queued message to send it.
--
-- The messages one flush of the dispatcher's group commit begins on one
-- shard, in one call (the call's fixed cost and the lease check paid once).
--
-- KEYS[1] lease                wa:{sNN}:lease:dispatch
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] tenants' open count  wa:{sNN}:tq
-- The messages' state hashes are built from ARGV[3], their queue streams
-- are given whole (the same slot).
--
-- ARGV[1] consumer group       ARGV[2] state TTL (s)
-- ARGV[3] shard prefix (wa:{sNN}:)
-- then per message, from ARGV[4]:
--   +0 lease value (fencing token)   +1 now (unix ms)   +2 message id
--   +3 queue stream              +4 queue entry id ('' for a message of a
--                                   batch's chunk: the chunk's entry is
--                                   acknowledged once all of it is settled)
--   +5 m: 0; or 15 for a message of a batch's chunk whose state is not
--      made yet, followed by what makes it (the batch's and the packed
--      record's fields): tenant, sender, recipient, type, content,
--      campaign, the batch's acceptance time (ms), expires (ms, 0),
--      fallback text, fallback after (s), max attempts (0: the
--      dispatcher's), "1" free-form (needs the window open), window (ms),
--      conversation TTL (s), the file entry packed (filecodec.go) up to
--      its conversation; or 1 for a single send whose state is not made
--      yet: "S" (made from its send record, lib.lua's materialize_send)
--
-- Marks the message "sending", counts the attempt and writes a "sending"
-- event before the provider is called, so that a worker dying between the
-- provider's answer and the state write is visible to whoever takes the
-- message next (previous status "sending"): that is the one case in which a
-- message may be sent twice. A message whose validity has passed ends
-- "expired" here and is never sent. A batch's message is made first: its
-- guest's opt-out and window are checked now (a refusal is recorded as
-- "failed", so the batch's counts add up), it joins the guest's
-- conversation (filed later by the filer) and its "queued" event is
-- written with the batch's acceptance time. A single send's state is made
-- from its send record, which leaves the shard's pending hash: it was
-- judged, filed and its "queued" event written when it was accepted.
--
-- Answers BEGIN_WIDTH values per message, padded with '': {"fenced"}
-- when the caller no longer owns the shard; {"gone"} when the message is
-- gone; {status} when it is not sendable any more (the entry is then
-- acknowledged); {"expired"}; {"failed"} (a batch's message refused as it
-- was made); {"later", due} when it waits for a retry (taken over from a
-- previous owner); {"error", why} when its own step failed (the call's
-- other messages go on); or {"go", previous status, tenant, sender, recipient,
-- type, content, lane, conversation id, staff member id, attempt, queued
-- at, throttled attempts, attempt base, fallback text, fallback after (s),
-- expires, max attempts (0: the dispatcher's)}.
local BEGIN_WIDTH = 18
local BEGIN_FIELDS = {'st', 't', 'f', 'r', 'ty', 'b', 'l', 'c', 'sm', 'qa', 'tc', 'ab', 'ft', 'fas', 'x', 'ma', 'rd', 'cp', 'tn', 'ev', 'a', 'ev2'}
local group, ttl, prefix = ARGV[1], ARGV[2], ARGV[3]

local function begin_one(msgkey, stream, now, entry, a, single)
  local f = redis.call('HMGET', msgkey, unpack(BEGIN_FIELDS))
  if not f[1] and single then
    -- No record either: gone (below).
    f = materialize_send(msgkey, prefix) or f
  elseif not f[1] and a then
    f = materialize(msgkey, KEYS[2], KEYS[3], a)
    if not f then
      return {'failed'}
    end
  end
  local st = f[1]
  if not st then
    if entry ~= '' then ack(stream, group, entry) end
    return {'gone'}
  end
  if st ~= 'queued' and st ~= 'scheduled' and st ~= 'sending' then
    if entry ~= '' then ack(stream, group, entry) end
    return {st}
  end
  if f[15] and tonumber(now) > tonumber(f[15]) then
    record(msgkey, KEYS[2], KEYS[3], 'expired', now,
      {ec = '', et = 'validity passed before the message could be sent', ch = 'whatsapp'}, ttl)
    if entry ~= '' then ack(stream, group, entry) end
    return {'expired'}
  end
  if st == 'queued' and f[17] and tonumber(now) < tonumber(f[17]) then
    return {'later', f[17]}
  end
  -- Events of one message are strictly ordered in time: "sending" comes
  -- after "queued" even within the millisecond it was accepted in.
  local at = tonumber(now)
  if f[10] and at <= tonumber(f[10]) then at = tonumber(f[10]) + 1 end
  at = string.format('%d', at)
  local attempt = (tonumber(f[21]) or 0) + 1
  redis.call('HSET', msgkey, 'st', 'sending', 'sg', at, 'a', attempt)
  redis.call('EXPIRE', msgkey, ttl)
  local ev, ev2 = f[20], f[22]
  if not ev or not ev2 then ev, ev2 = make_ev(f[2], f[3], f[4], f[5], f[7], f[8], f[9], f[18], f[19]) end
  emit_packed(KEYS[2], message_id(msgkey), 'sending', at, attempt, EMPTY_PROVIDER_PART, ev, ev2)
  return {'go', st, f[2], f[3], f[4], f[5], f[6], f[7], f[8] or '', f[9] or '', tostring(attempt),
    f[10], f[11] or '0', f[12] or '0', f[13] or '', f[14] or '0', f[15] or '0', f[16] or '0'}
end

local owner = redis.call('GET', KEYS[1])
local out = {}
local i = 4
while i <= #ARGV do
  local m = tonumber(ARGV[i + 5])
  local res
  if owner ~= ARGV[i] then
    res = {'fenced'}
  else
    local a
    -- A single send's one argument ("S") marks it: its state is made from
    -- its send record. A batch's message brings what makes its state.
    local single = m == 1
    if m > 1 then
      -- materialize's arguments, as it numbers them.
      a = {ARGV[i + 1], ARGV[i], group, ARGV[i + 4], ttl, prefix}
      for k = 1, m do a[6 + k] = ARGV[i + 5 + k] end
    end
    -- One message's failure (a state no code of ours wrote) is its own:
    -- the others of the call go on.
    local ok, r = pcall(begin_one, prefix .. 'msg:' .. ARGV[i + 2], ARGV[i + 3], ARGV[i + 1], ARGV[i + 4], a, single)
    if ok then
      res = r
    else
      res = {'error', tostring(r)}
    end
  end
  for k = 1, BEGIN_WIDTH do
    out[#out + 1] = res[k] or ''
  end
  i = i + 6 + m
end
return out
