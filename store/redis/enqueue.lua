-- enqueue.lua: accept one message, atomically.
--
-- KEYS[1] message state hash   wa:{sNN}:msg:<id>
-- KEYS[2] queue stream         wa:{sNN}:q:<lane>, or the delay zset wa:{sNN}:delay when scheduled
-- KEYS[3] events stream        wa:{sNN}:events
-- KEYS[4] idempotency key      wa:{sNN}:idem:<tenant>:<key> (optional)
--
-- ARGV[1]  message id            ARGV[2]  now (unix ms)
-- ARGV[3]  state TTL (s)         ARGV[4]  idempotency TTL (s)
-- ARGV[5]  request fingerprint   ARGV[6]  tenant
-- ARGV[7]  sender                ARGV[8]  recipient
-- ARGV[9]  type                  ARGV[10] content (Meta's object, JSON)
-- ARGV[11] lane                  ARGV[12] conversation id
-- ARGV[13] staff member id       ARGV[14] due (unix ms; > now means scheduled)
--
-- Returns {"ok", id} when queued, {"dup", first id} when the idempotency key
-- was seen with the same fingerprint, {"conflict", first id} when it was seen
-- with a different request.
local id = ARGV[1]
if #KEYS >= 4 then
  local prev = redis.call('GET', KEYS[4])
  if prev then
    local sep = string.find(prev, '\n', 1, true)
    local first = string.sub(prev, 1, sep - 1)
    if string.sub(prev, sep + 1) ~= ARGV[5] then
      return {'conflict', first}
    end
    return {'dup', first}
  end
  redis.call('SET', KEYS[4], id .. '\n' .. ARGV[5], 'EX', ARGV[4])
end

local now = ARGV[2]
local due = tonumber(ARGV[14])
local status = 'queued'
if due > tonumber(now) then
  status = 'scheduled'
end
redis.call('HSET', KEYS[1], 'st', status, 't', ARGV[6], 'f', ARGV[7], 'r', ARGV[8],
  'ty', ARGV[9], 'b', ARGV[10], 'l', ARGV[11], 'c', ARGV[12], 'sm', ARGV[13],
  'qa', now, 'a', 0)
redis.call('EXPIRE', KEYS[1], ARGV[3])
if status == 'scheduled' then
  redis.call('ZADD', KEYS[2], due, ARGV[11] .. '|' .. id)
else
  redis.call('XADD', KEYS[2], '*', 'id', id)
end
emit(KEYS[3], KEYS[1], status, now, {'ch', 'whatsapp'})
return {'ok', id}
