-- list: ARGV[4]: 'all', or 'one' and ARGV[5] the service; ARGV[6]: the
-- first rank, ARGV[7]: how many (at most BATCH: the caller pages).
-- Replies with m, encoded failure, m, encoded failure, ... oldest first.
local set = ALL
if ARGV[4] == 'one' then
  set = log_key(ARGV[5])
  guard(set, 'zset')
end
local first = tonumber(ARGV[6])
local count = math.min(tonumber(ARGV[7]), BATCH)
local out = {}
if count <= 0 then return out end
local members = redis.call('ZRANGE', set, first, first + count - 1)
if #members == 0 then return out end
local values = redis.call('HMGET', REC, unpack(members))
for i, m in ipairs(members) do
  out[#out + 1] = m
  out[#out + 1] = values[i]
end
return out
