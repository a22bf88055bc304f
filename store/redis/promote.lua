-- promote.lua: move due retries and scheduled sends from the delay zset
-- back to their queue streams.
--
-- KEYS[1] delay zset       wa:{sNN}:delay
-- KEYS[2] wake stream      wa:{sNN}:wake
-- KEYS[3] senders hash     wa:{sNN}:senders
-- KEYS[4] woken senders    wa:{sNN}:awake
-- ARGV[1] now (unix ms)    ARGV[2] at most this many
-- ARGV[3] the shard's key prefix "wa:{sNN}:", for the senders' queue hashes
--
-- Members are "<id>\n<stream>\n<recipient>\n<sender>\n<lane>\t<campaign>\n<fb>",
-- fb "1" when the message has a fallback text; a batch's chunk is
-- "@<batch id>\n<stream>\n<chunk index>\n<sender>\n<lane>\t<campaign>\n<fb>\n<count>"
-- (enqueue_chunk.lua).
-- Returns how many members moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local parts = {}
  for p in string.gmatch(member, '[^\n]+') do
    parts[#parts + 1] = p
  end
  local id, stream, recipient, sender, regval = parts[1], parts[2], parts[3], parts[4], parts[5]
  ensure_queue(stream, KEYS[3], ARGV[3] .. 'queues:' .. sender, sender, regval)
  if string.sub(id, 1, 1) == '@' then
    redis.call('XADD', stream, '*', 'bk', string.sub(id, 2), 'k', recipient, 'n', parts[7], 'fb', parts[6])
  else
    redis.call('XADD', stream, '*', 'id', id, 'r', recipient, 'fb', parts[6] or '0')
  end
  wake(KEYS[2], KEYS[4], sender)
  redis.call('ZREM', KEYS[1], member)
end
return #due
