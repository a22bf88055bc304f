-- begin.lua: the shard's owner takes one queued message to send it.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] events stream        wa:{sNN}:events
-- KEYS[3] lease                wa:{sNN}:lease:dispatch
-- KEYS[4] queue stream         the entry's stream
-- KEYS[5] tenants' open count  wa:{sNN}:tq
--
-- ARGV[1] now (unix ms)        ARGV[2] lease value (fencing token)
-- ARGV[3] consumer group       ARGV[4] queue entry id ('' for a message of
--                              a batch's chunk: the chunk's entry is
--                              acknowledged once all of it is settled)
-- ARGV[5] state TTL (s)
-- For a message of a batch's chunk whose state is not made yet, what makes
-- it (the batch's and the packed record's fields), from ARGV[6]:
-- ARGV[6]  shard prefix        ARGV[7]  tenant
-- ARGV[8]  sender              ARGV[9]  recipient
-- ARGV[10] type                ARGV[11] content
-- ARGV[12] campaign            ARGV[13] the batch's acceptance time (ms)
-- ARGV[14] expires (ms, 0)     ARGV[15] fallback text
-- ARGV[16] fallback after (s)  ARGV[17] max attempts (0: the dispatcher's)
-- ARGV[18] "1": free-form, needs the window open
-- ARGV[19] window (ms)         ARGV[20] conversation TTL (s)
-- ARGV[21] the file entry, packed (filecodec.go) up to its conversation
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
-- written with the batch's acceptance time.
--
-- Returns {"fenced"} when the caller no longer owns the shard; false when
-- the message is gone; {status} when it is not sendable any more (the entry
-- is then acknowledged); {"expired"}; {"later", due} when it waits for a
-- retry (taken over from a previous owner); or {"go", previous status, tenant,
-- sender, recipient, type, content, lane, conversation id, staff member id,
-- attempt, queued at, throttled attempts, attempt base, fallback text,
-- fallback after (s), expires, max attempts (0: the dispatcher's)}.
if fenced(KEYS[3], ARGV[2]) then
  return {'fenced'}
end
local BEGIN_FIELDS = {'st', 't', 'f', 'r', 'ty', 'b', 'l', 'c', 'sm', 'qa', 'tc', 'ab', 'ft', 'fas', 'x', 'ma', 'rd', 'cp', 'tn', 'ev'}
local f = redis.call('HMGET', KEYS[1], unpack(BEGIN_FIELDS))
if not f[1] and #ARGV >= 21 then
  f = materialize(KEYS[1], KEYS[2], KEYS[5], ARGV)
  if not f then
    return {'failed'}
  end
end
local st = f[1]
if not st then
  if ARGV[4] ~= '' then ack(KEYS[4], ARGV[3], ARGV[4]) end
  return false
end
if st ~= 'queued' and st ~= 'scheduled' and st ~= 'sending' then
  if ARGV[4] ~= '' then ack(KEYS[4], ARGV[3], ARGV[4]) end
  return {st}
end
if f[15] and tonumber(ARGV[1]) > tonumber(f[15]) then
  record(KEYS[1], KEYS[2], KEYS[5], 'expired', ARGV[1],
    {ec = '', et = 'validity passed before the message could be sent', ch = 'whatsapp'}, ARGV[5])
  if ARGV[4] ~= '' then ack(KEYS[4], ARGV[3], ARGV[4]) end
  return {'expired'}
end
if st == 'queued' and f[17] and tonumber(ARGV[1]) < tonumber(f[17]) then
  return {'later', f[17]}
end
-- Events of one message are strictly ordered in time: "sending" comes
-- after "queued" even within the millisecond it was accepted in.
local at = tonumber(ARGV[1])
if f[10] and at <= tonumber(f[10]) then at = tonumber(f[10]) + 1 end
at = string.format('%d', at)
redis.call('HSET', KEYS[1], 'st', 'sending', 'sg', at)
redis.call('EXPIRE', KEYS[1], ARGV[5])
local attempt = redis.call('HINCRBY', KEYS[1], 'a', 1)
local ev = f[20]
if not ev then ev = make_ev(f[2], f[3], f[4], f[5], f[7], f[8], f[9], f[18], f[19]) end
emit_packed(KEYS[2], message_id(KEYS[1]), 'sending', at, attempt, EMPTY_PROVIDER_PART, ev)
return {'go', st, f[2], f[3], f[4], f[5], f[6], f[7], f[8] or '', f[9] or '', tostring(attempt),
  f[10], f[11] or '0', f[12] or '0', f[13] or '', f[14] or '0', f[15] or '0', f[16] or '0'}
