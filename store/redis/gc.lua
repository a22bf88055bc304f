-- gc.lua: drop a sender's queue stream that is empty with nothing pending,
-- and the consumers of it that are idle with nothing pending.
--
-- KEYS[1] queue stream         wa:{sNN}:q:<sender>:…
-- KEYS[2] sender's queues      wa:{sNN}:queues:<sender>
-- KEYS[3] senders hash         wa:{sNN}:senders
-- ARGV[1] sender   ARGV[2] consumer group   ARGV[3] consumer idle limit (ms)
--
-- Enqueue creates the stream again (ensure_queue) when it is needed.
-- Returns 1 when the stream was dropped.
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HDEL', KEYS[2], KEYS[1])
  return 0
end
if redis.call('XLEN', KEYS[1]) == 0 then
  local p = redis.call('XPENDING', KEYS[1], ARGV[2])
  if p[1] == 0 then
    redis.call('DEL', KEYS[1])
    redis.call('HDEL', KEYS[2], KEYS[1])
    if redis.call('HLEN', KEYS[2]) == 0 then
      redis.call('HDEL', KEYS[3], ARGV[1])
    end
    return 1
  end
end
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[2])) do
  local name, pending, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1]
    elseif c[i] == 'pending' then pending = c[i + 1]
    elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if pending == 0 and idle > tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[2], name)
  end
end
return 0
