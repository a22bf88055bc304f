-- file.lua: file a shard's oldest waiting messages into their
-- conversations and delete them from the file stream, in one atomic call:
-- each is filed once, in the stream's order, whoever calls (the filer
-- role, or a read that wants what is accepted). The caller read the
-- entries and grouped them by conversation (store/redis/file.go): this
-- applies each conversation's share, without parsing anything.
--
-- KEYS[1] file stream          wa:{sNN}:file; the conversations' keys are
--                              built from ARGV[1] (the same slot)
--
-- ARGV[1] shard prefix         ARGV[2] conversation TTL (s)
-- ARGV[3] the stream id of the first entry read: the call files nothing
--         unless it is still the stream's first (no other caller filed
--         the same entries meanwhile)
-- ARGV[4] the stream id of the last entry read
-- then per conversation, from ARGV[5], either a new conversation's share,
-- laid out whole by Go so that this only writes it (no hash yet: its
-- first message made it):
--   +0 "N"                 +1 its hash key (cv:)   +2 its history key (cvh:)
--   +3 tenant              +4 conversation id      +5 last activity (ms)
--   +6 h, then h values: the hash's fields and values
--   +7+h k, then its k history entries (JSON), oldest first
-- or FILE_FIELDS values and its history entries:
--   +0 tenant              +1 conversation id
--   +2 sender              +3 guest
--   +4 "1": its first message made it (no hash yet), else "0"
--   +5 created (ms)        +6 last activity (ms)
--   +7 last preview        +8 last direction (in, out)
--   +9 messages            +10 of them from the guest (unread)
--   +11 the guest's last message in it (ms, "0": none)
--   +12 the guest's name ("")
--   +13 metadata to merge (JSON object, "")
--   +14 k, then its k history entries (JSON), oldest first
--
-- The history gets one RPUSH per conversation, the summary one HSET, the
-- tenant's index one ZADD per tenant; a conversation's and its guest's
-- TTLs are renewed unless it was active within RENEW_MS; a conversation
-- without a hash (new, or expired while the guest's hash still named it)
-- gets one. Returns 1, or 0 when ARGV[3] is no longer the first entry.
local FILE_FIELDS = 15
local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
if #head == 0 or head[1][1] ~= ARGV[3] then
  return 0
end
local prefix, ttl = ARGV[1], ARGV[2]
local idx, tenants = {}, {}
local i = 5
local n = #ARGV
while i <= n do
  if ARGV[i] == 'N' then
    local ck, hk, t, id = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4]
    local h = tonumber(ARGV[i + 6])
    local fv = i + 7
    redis.call('HSET', ck, unpack(ARGV, fv, fv + h - 1))
    local k = tonumber(ARGV[fv + h])
    local first, last = fv + h + 1, fv + h + k
    for j = first, last, 1000 do
      local len = redis.call('RPUSH', hk, unpack(ARGV, j, math.min(j + 999, last)))
      if len > HISTORY_MAX then
        redis.call('LTRIM', hk, -HISTORY_MAX, -1)
      end
    end
    redis.call('EXPIRE', ck, ttl)
    redis.call('EXPIRE', hk, ttl)
    local z = idx[t]
    if not z then
      z = {}
      idx[t] = z
      tenants[#tenants + 1] = t
    end
    z[#z + 1] = ARGV[i + 5]
    z[#z + 1] = id
    i = last + 1
  else
  local t, id, f, g, nw = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3], ARGV[i + 4] == '1'
  local la, li, nm, md = ARGV[i + 6], ARGV[i + 11], ARGV[i + 12], ARGV[i + 13]
  local n, un = tonumber(ARGV[i + 9]), tonumber(ARGV[i + 10])
  local first, last = i + FILE_FIELDS, i + FILE_FIELDS - 1 + tonumber(ARGV[i + 14])
  local ck = conv_key(prefix, t, id)
  local hk = prefix .. 'cvh:' .. t .. ':' .. id
  local set = {'la', la, 'lp', ARGV[i + 7], 'ld', ARGV[i + 8]}
  local fresh = false
  local cur = nil
  if not nw then
    cur = redis.call('HMGET', ck, 't', 'la', 'li', 'md')
    nw = not cur[1]
  end
  if nw then
    local more = {'t', t, 'f', f, 'g', g, 'st', 'open', 'ca', ARGV[i + 5], 'n', n, 'un', un}
    for _, x in ipairs(more) do set[#set + 1] = x end
    if li ~= '0' then set[#set + 1] = 'li'; set[#set + 1] = li end
    if md ~= '' then set[#set + 1] = 'md'; set[#set + 1] = md end
  else
    fresh = tonumber(la) - (tonumber(cur[2] or '0') or 0) < RENEW_MS
    if li ~= '0' and tonumber(li) > (tonumber(cur[3] or '0') or 0) then
      set[#set + 1] = 'li'; set[#set + 1] = li
    end
    if md ~= '' then
      local m = {}
      if cur[4] then m = cjson.decode(cur[4]) end
      for k, v in pairs(cjson.decode(md)) do m[k] = v end
      set[#set + 1] = 'md'; set[#set + 1] = cjson.encode(m)
    end
    redis.call('HINCRBY', ck, 'n', n)
    if un > 0 then redis.call('HINCRBY', ck, 'un', un) end
  end
  if nm ~= '' then set[#set + 1] = 'nm'; set[#set + 1] = nm end
  redis.call('HSET', ck, unpack(set))
  local len = 0
  for j = first, last, 1000 do
    len = redis.call('RPUSH', hk, unpack(ARGV, j, math.min(j + 999, last)))
  end
  if len > HISTORY_MAX then
    redis.call('LTRIM', hk, -HISTORY_MAX, -1)
  end
  if nw then
    redis.call('EXPIRE', ck, ttl)
    redis.call('EXPIRE', hk, ttl)
  elseif not fresh then
    redis.call('EXPIRE', ck, ttl)
    redis.call('EXPIRE', hk, ttl)
    keep_guest(guest_key(prefix, f, g), ttl)
  end
  local z = idx[t]
  if not z then
    z = {}
    idx[t] = z
    tenants[#tenants + 1] = t
  end
  z[#z + 1] = la
  z[#z + 1] = id
  i = last + 1
  end
end
for _, t in ipairs(tenants) do
  local z = idx[t]
  -- ZADD in slices: unpack takes at most a few thousand values.
  for j = 1, #z, 2000 do
    redis.call('ZADD', prefix .. 'cvi:' .. t, unpack(z, j, math.min(j + 1999, #z)))
  end
end
redis.call('XTRIM', KEYS[1], 'MINID', next_stream_id(ARGV[4]))
return 1
