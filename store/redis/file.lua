-- file.lua: file the oldest messages of a shard that wait in its file
-- stream into their conversations (file_pending in lib.lua), and delete
-- them, in one atomic call: each is filed once, in the stream's order,
-- whoever calls (the filer role, or a read that wants what is accepted).
--
-- KEYS[1] file stream          wa:{sNN}:file; the conversations' keys are
--                              built from ARGV[1] (the same slot)
--
-- ARGV[1] shard prefix         ARGV[2] most entries to file
-- ARGV[3] conversation TTL (s)
-- ARGV[4] the newest stream id to file ('+': any)
-- ARGV[5] "1": answer the newest id left in the stream too
--
-- Returns {filed, stream id of the first filed ('' when none), the newest
-- id left in the stream ('' when none or not asked for)}.
local n, first = file_pending(ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4])
local last = ''
if ARGV[5] == '1' then
  local tail = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if #tail > 0 then last = tail[1][1] end
end
return {n, first, last}
