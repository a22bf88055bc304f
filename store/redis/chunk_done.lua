-- chunk_done.lua: the shard's owner has settled every message of a
-- batch's chunk (each has its own state now): acknowledge the chunk's queue
-- entry, drop its packed record, and count the chunk done; once every chunk
-- of the batch is, the batch hash gets its TTL. The same for an entry of
-- single sends (enqueue.lua), which has no record or batch: only the entry
-- is acknowledged.
--
-- KEYS[1] batch hash           wa:{sNN}:batch:<batch id>
-- KEYS[2] queue stream         the chunk entry's stream
-- KEYS[3] lease                wa:{sNN}:lease:dispatch
--
-- ARGV[1] lease value          ARGV[2] consumer group
-- ARGV[3] queue entry id       ARGV[4] packed record key ('' none)
-- ARGV[5] state TTL (s)
--
-- Returns {"fenced"} when the caller no longer owns the shard, else 1.
if fenced(KEYS[3], ARGV[1]) then
  return {'fenced'}
end
ack(KEYS[2], ARGV[2], ARGV[3])
if ARGV[4] ~= '' and redis.call('DEL', ARGV[4]) == 1 then
  local done = redis.call('HINCRBY', KEYS[1], 'cd', 1)
  if done >= (tonumber(redis.call('HGET', KEYS[1], 'ck') or '0') or 0) then
    redis.call('EXPIRE', KEYS[1], ARGV[5])
  end
end
return 1
