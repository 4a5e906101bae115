-- GCRA (generic cell rate algorithm) for one key, on Redis server time: a
-- line-by-line port of `Gcra::decide` in docaiche-ratelimit/src/gcra.rs
-- (definitions there; keep the two in step).
--
-- KEYS[1]  the limiter key, hash-tagged ("<prefix>:{<key>}")
-- ARGV[1]  T, the emission interval, in nanoseconds (period / limit, >= 1)
-- ARGV[2]  tau, gcra.rs's capacity C = T * limit, in nanoseconds: the largest
--          backlog an allowed request may leave behind
-- ARGV[3]  limit, the quota's limit
-- ARGV[4]  cost, units asked for (>= 1)
-- ARGV[5]  "1" to peek (decide without storing), "0" to check
--
-- The key holds the theoretical arrival time (TAT) as "<seconds>:<nanos>"
-- since the Unix epoch of the server's clock, with a PX expiry at the TAT, so
-- an idle key vanishes exactly when forgetting it changes nothing.
--
-- Lua numbers are doubles: every quantity below is an integer under 2^53
-- (the caller bounds tau to 2^52), so the arithmetic is exact. Absolute times
-- are kept in two parts because nanoseconds since the epoch are not.
--
-- Returns {allowed (0|1), backlog}: backlog is TAT - now in nanoseconds after
-- the decision (before it when denied), never negative. The caller derives
-- remaining, reset_after and retry_after from it with the same arithmetic as
-- the in-process limiter.
local t = tonumber(ARGV[1])
local tau = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])

local time = redis.call('TIME')
local now_s = tonumber(time[1])
local now_ns = tonumber(time[2]) * 1000

local backlog = 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local s, n = string.match(stored, '^(%d+):(%d+)$')
  if s then
    backlog = (tonumber(s) - now_s) * 1000000000 + (tonumber(n) - now_ns)
    if backlog < 0 then
      backlog = 0
    end
  end
end

if cost > limit then
  return {0, backlog}
end
local after = backlog + cost * t
if after > tau then
  return {0, backlog}
end
if ARGV[5] ~= '1' then
  local tat_ns = now_ns + after
  local tat_s = now_s + math.floor(tat_ns / 1000000000)
  tat_ns = tat_ns % 1000000000
  redis.call('SET', KEYS[1], string.format('%d:%09d', tat_s, tat_ns),
    'PX', math.ceil(after / 1000000))
end
return {1, after}
