-- conv_action.lua: one staff action on a conversation, with its event for
-- the tenant's webhook.
--
-- KEYS[1] conversation hash    wa:{sNN}:cv:<tenant>:<id>
-- The notify stream is built from ARGV[1].
--
-- ARGV[1] shard prefix   ARGV[2] tenant   ARGV[3] action   ARGV[4] now (ms)
-- ARGV[5] the action's fields (JSON object)   ARGV[6] window (ms)
--
-- The caller files what waits on the shard first (Store.FileNow), so that
-- the action comes after the messages accepted or received before it:
-- "read" covers every message the guest sent before it.
--
-- Actions: resolve {resolution_notes, satisfaction_rating,
-- follow_up_required, resolved_by} archives it with its resolution; assign
-- {assigned_to, department} (either or both; "" clears one; assigned_by
-- rides along into the event); link {service_request_id}; read (unread to
-- 0); archive; close; reopen (it becomes the guest's current conversation
-- again). A closed conversation takes only reopen and read.
--
-- Returns {"ok", previous status, status}, {"missing"} (no such
-- conversation of the tenant) or {"closed"}.
local ck = KEYS[1]
local c = redis.call('HMGET', ck, 't', 'st', 'f', 'g', 'li')
if not c[1] or c[1] ~= ARGV[2] then
  return {'missing'}
end
local prev, action, now = c[2], ARGV[3], ARGV[4]
local f = cjson.decode(ARGV[5])
if prev == 'closed' and action ~= 'reopen' and action ~= 'read' then
  return {'closed'}
end
local st = prev
if action == 'resolve' then
  f.resolved_at = tonumber(now)
  redis.call('HSET', ck, 'rs', cjson.encode(f), 'st', 'archived')
  st = 'archived'
elseif action == 'assign' then
  -- Each field given replaces the conversation's ("" clears it), a field
  -- not given stays; the event then carries both as they now are.
  for _, fh in ipairs({{'assigned_to', 'as'}, {'department', 'dp'}}) do
    local v = f[fh[1]]
    if v == '' then
      redis.call('HDEL', ck, fh[2])
    elseif v ~= nil then
      redis.call('HSET', ck, fh[2], v)
    end
  end
  local cur = redis.call('HMGET', ck, 'as', 'dp')
  f.assigned_to = cur[1] or ''
  f.department = cur[2] or ''
elseif action == 'link' then
  redis.call('HSET', ck, 'sr', f.service_request_id)
elseif action == 'read' then
  redis.call('HSET', ck, 'un', 0, 'rda', now)
elseif action == 'archive' then
  st = 'archived'
elseif action == 'close' then
  st = 'closed'
elseif action == 'reopen' then
  st = 'open'
  -- The reopened conversation is the guest's current one again: the
  -- guest's next message and sends that name none go to it.
  -- (The guest's hash lives as long as its conversations; one gone
  -- is not made again here, without its TTL.)
  local g = guest_key(ARGV[1], c[3], c[4])
  if redis.call('EXISTS', g) == 1 then
    redis.call('HSET', g, 'cv', string.match(ck, ':([^:]*)$'))
  end
else
  return redis.error_reply('unknown action ' .. action)
end
if st ~= prev then
  redis.call('HSET', ck, 'st', st)
end
if action ~= 'read' then
  -- The event names the statuses as the API does (active, initiated,
  -- expired, archived, closed), not the stored open.
  local g = guest_key(ARGV[1], c[3], c[4])
  local window = tonumber(ARGV[6])
  f.action = action
  f.status = conv_api_status(g, st, c[5], now, window)
  f.previous_status = conv_api_status(g, prev, c[5], now, window)
  notify(ARGV[1], 'conversation_updated', ARGV[2], c[3], c[4],
    string.match(ck, ':([^:]*)$'), now, cjson.encode(f))
end
return {'ok', prev, st}
