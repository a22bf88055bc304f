-- enqueue_chunk.lua: accept one chunk of a batch (up to ChunkSize messages
-- of one sender's bulk lane) as one packed record and one queue entry,
-- whatever the chunk's size: each message's state, conversation and
-- "queued" event are made by the dispatcher when it takes the message
-- (begin.lua), at the number's rate.
--
-- KEYS[1] batch hash           wa:{sNN}:batch:<batch id>; the other keys are
--                              built from ARGV[1] (the same slot)
--
-- ARGV[1]  shard prefix        ARGV[2]  batch id
-- ARGV[3]  chunk index         ARGV[4]  packed record (chunk.go)
-- ARGV[5]  messages in it      ARGV[6]  tenant
-- ARGV[7]  sender              ARGV[8]  queue stream key
-- ARGV[9]  "<lane>\t<campaign>"
-- ARGV[10] due (unix ms; 0: now)
-- ARGV[11] "1": the batch's messages have a fallback text
--
-- The record (wa:{sNN}:bk:<batch id>:<index>) lives until every message of
-- the chunk is settled (chunk_done.lua): no TTL while any waits. A chunk
-- stored already (the batch sent again with its Idempotency-Key) is left
-- as it is. Returns {queued, skipped}.
local prefix, batch, k, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[5])
local tenant, sender, queue, regval = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local rec = prefix .. 'bk:' .. batch .. ':' .. k
if not redis.call('SET', rec, ARGV[4], 'NX') then
  return {0, n}
end
local due = tonumber(ARGV[10])
if due > 0 then
  redis.call('ZADD', prefix .. 'delay', due,
    '@' .. batch .. '\n' .. queue .. '\n' .. k .. '\n' .. sender .. '\n' .. regval .. '\n' .. ARGV[11] .. '\n' .. n)
  -- The owner's housekeeping sleeps until its next due send: tell it.
  redis.call('XADD', prefix .. 'wake', 'MAXLEN', '~', 1000, '*', 'd', ARGV[10])
else
  ensure_queue(queue, prefix .. 'senders', prefix .. 'queues:' .. sender, sender, regval)
  redis.call('XADD', queue, '*', 'bk', batch, 'k', k, 'n', n, 'fb', ARGV[11])
  wake(prefix .. 'wake', prefix .. 'awake', sender)
end
redis.call('HINCRBY', prefix .. 'tq', tenant, n)
return {n, 0}
