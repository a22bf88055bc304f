-- portfolio.lua: admit one business-initiated send (a template to a guest
-- whose customer service window is closed) under its business portfolio's
-- messaging limit: the unique guests the portfolio may start conversations
-- with in a moving 24 hours, shared by all its numbers (Meta, since
-- October 2025). A guest counted within the last 24 hours is admitted
-- again without counting; a new one is counted while the portfolio is
-- under its limit (or has none: -1).
--
-- KEYS[1] the portfolio's guests   wa:{pf:<id>}:users  zset guest -> when counted (ms)
-- KEYS[2] the portfolio's tier     wa:{pf:<id>}:tier   hash limit (from Meta's
--                                  webhooks; -1 unlimited), at (ms)
--
-- ARGV[1] guest                    ARGV[2] now (unix ms)
-- ARGV[3] the configured limit (-1 unlimited), used until Meta announced one
-- ARGV[4] the window (ms, 24 hours)
--
-- Returns {1, count, limit} when admitted, or {0, count, limit, ms} when
-- the portfolio is at its limit: ms is when its oldest counted guest
-- leaves the window (the earliest a new guest may be admitted).
local now, window = tonumber(ARGV[2]), tonumber(ARGV[4])
local limit = tonumber(redis.call('HGET', KEYS[2], 'limit') or ARGV[3]) or -1
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return {1, n, limit}
end
-- Unlimited (or not known yet) counts too: a limit announced later holds
-- by the guests of the day already started.
if limit < 0 or n < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  -- The set empties itself a day after its last guest.
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, n + 1, limit}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, n, limit, tonumber(oldest[2]) + window}
