-- lib.lua: what the scripts share. scripts.go puts it in front of each
-- script's source, so every script is self-contained in Redis's cache.

-- RANK orders statuses for forward-only updates (message.Rank, kept equal
-- by TestLuaRankMatchesGo).
local RANK = {queued = 0, scheduled = 0, sending = 1, sent = 2, fallback = 2,
  failed = 3, expired = 3, canceled = 3, delivered = 4, read = 5}

-- AT_FIELD names the hash field holding when a status was first reached.
local AT_FIELD = {sent = 'sa', delivered = 'da', read = 'ra', failed = 'fa',
  expired = 'xa', canceled = 'ca', fallback = 'fb'}

-- message_id returns the id at the end of a state hash key "...:msg:<id>".
local function message_id(msgkey)
  return string.match(msgkey, 'msg:(.*)$')
end

-- emit appends one event of the message in msgkey to the events stream:
-- the message's own fields from its hash, then status, time and extra
-- field/value pairs (provider, error…).
local function emit(events, msgkey, status, at, extra)
  local m = redis.call('HMGET', msgkey, 't', 'f', 'r', 'ty', 'l', 'c', 'sm', 'a')
  local args = {'m', message_id(msgkey), 't', m[1], 'f', m[2], 'r', m[3], 's', status,
    'ts', at, 'ty', m[4], 'l', m[5], 'c', m[6] or '', 'sm', m[7] or '', 'a', m[8] or '0'}
  for i = 1, #extra do
    args[#args + 1] = extra[i]
  end
  redis.call('XADD', events, '*', unpack(args))
end
