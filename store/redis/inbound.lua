-- inbound.lua: take a guest's message to a business number, atomically:
-- once per provider message id, the 24-hour window, the conversation
-- (opened, or reopened when archived; a closed one is left and a new one
-- begun), an opt-out or opt-in the message asked for, the events for the
-- tenant's webhook, and the entry that files it into its conversation
-- (history, unread count, summary: the filer, in order with the
-- messages sent to the guest).
--
-- KEYS[1] guest hash           wa:{sNN}:g:<sender>:<guest>
-- KEYS[2] seen marker          wa:{sNN}:in:<provider message id>
-- Conversation keys (cv:), the file and notify streams are built from
-- ARGV[1].
--
-- ARGV[1]  shard prefix          ARGV[2]  tenant
-- ARGV[3]  sender                ARGV[4]  guest
-- ARGV[5]  guest's profile name  ARGV[6]  when the guest sent it (unix ms)
-- ARGV[7]  now (unix ms)
-- ARGV[8]  the file entry, packed (filecodec.go) up to its conversation
-- ARGV[9]  the seen marker's value: "<tenant>\t<sender>\t<guest>", whose
--          message it was (read receipts are sent for it by that number)
-- ARGV[10] id for a new conversation
-- ARGV[11] "out", "in" or "": the opt-out or opt-in keyword it holds
-- ARGV[12] the keyword           ARGV[13] conversation TTL (s)
-- ARGV[14] seen marker TTL (s)   ARGV[15] notify kind (inbound_message, media_received)
-- ARGV[16] notify data (JSON)  ARGV[17] window (ms)
-- ARGV[18] a download job for the media the message carries (JSON object,
--          without its conversation), or ''
--
-- Returns {"dup"} for a message taken before, else {"ok", conversation,
-- change ("created", "reopened" or ""), opt change ("out", "in" or "")}.
if not redis.call('SET', KEYS[2], ARGV[9], 'NX', 'EX', ARGV[14]) then
  return {'dup'}
end
local prefix, tenant, sender, guest = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local g = KEYS[1]
local at, now, ttl = ARGV[6], ARGV[7], ARGV[13]

local gv = redis.call('HMGET', g, unpack(GUEST_FIELDS))
local set = {}
if tonumber(at) > (tonumber(gv[4] or '0') or 0) then
  set[#set + 1] = 'li'; set[#set + 1] = at
end
if ARGV[5] ~= '' then
  set[#set + 1] = 'nm'; set[#set + 1] = ARGV[5]
end
if #set > 0 then
  redis.call('HSET', g, unpack(set))
end

local conv = gv[5]
local change = ''
local st = nil
if conv then
  -- A current conversation without a hash is one not filed yet: open.
  st = redis.call('HGET', conv_key(prefix, tenant, conv), 'st') or 'open'
end
if not st or st == 'closed' then
  conv = ARGV[10]
  -- Its id is not a message's: its hash is made now, so that a send
  -- naming it meanwhile finds whose it is.
  conv_create(prefix, g, gv, conv, tenant, sender, guest, now, ttl, true)
  change = 'created'
elseif st == 'archived' then
  redis.call('HSET', conv_key(prefix, tenant, conv), 'st', 'open')
  change = 'reopened'
end
file_add(prefix, ARGV[8], conv, change == 'created')

if change ~= '' then
  -- As conv_action.lua's events: the API's status names, the action.
  local ev = {action = change, status = conv_api_status(g, 'open', at, now, tonumber(ARGV[17]))}
  if change == 'reopened' then ev.previous_status = 'archived' end
  notify(prefix, 'conversation_updated', tenant, sender, guest, conv, now, cjson.encode(ev))
end
notify(prefix, ARGV[15], tenant, sender, guest, conv, at, ARGV[16])
if ARGV[18] ~= '' then
  -- The job learns its conversation here, where it is decided; it is due
  -- now, in the same call as the message: no kill loses it.
  local job = '{"c":' .. cjson.encode(conv) .. ',' .. string.sub(ARGV[18], 2)
  redis.call('ZADD', prefix .. 'mediaq', now, job)
end

local opt = ''
local oo = gv[1]
if ARGV[11] == 'out' and oo ~= '1' then
  redis.call('HSET', g, 'oo', '1', 'ooa', at, 'oos', 'keyword')
  redis.call('PERSIST', g)
  opt = 'out'
  notify(prefix, 'guest_opted_out', tenant, sender, guest, conv, at,
    cjson.encode({source = 'keyword', keyword = ARGV[12]}))
elseif ARGV[11] == 'in' and oo == '1' then
  redis.call('HSET', g, 'oo', '0', 'ooa', at, 'oos', 'keyword')
  opt = 'in'
  notify(prefix, 'guest_opted_in', tenant, sender, guest, conv, at,
    cjson.encode({source = 'keyword', keyword = ARGV[12]}))
end
keep_guest(g, ttl, opt == 'out' or (oo == '1' and opt ~= 'in'))
return {'ok', conv, change, opt}
