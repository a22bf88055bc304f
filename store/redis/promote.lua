-- promote.lua: move due retries and scheduled sends from the delay zset to
-- their lane's queue stream.
--
-- KEYS[1] delay zset   wa:{sNN}:delay
-- KEYS[2] tx stream    wa:{sNN}:q:tx
-- KEYS[3] bulk stream  wa:{sNN}:q:bulk
-- ARGV[1] now (unix ms)   ARGV[2] at most this many
--
-- Members are "<lane>|<message id>". Returns how many moved.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local lane = string.sub(member, 1, sep - 1)
  local stream = KEYS[2]
  if lane == 'bulk' then stream = KEYS[3] end
  redis.call('XADD', stream, '*', 'id', string.sub(member, sep + 1))
  redis.call('ZREM', KEYS[1], member)
end
return #due
