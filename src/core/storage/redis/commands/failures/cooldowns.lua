-- cooldowns: ARGV[4]: now. Replies with name, end, "<since>:<reason>", ...
-- for the cooldowns running, ending soonest first (ties by name).
local ends = redis.call('ZRANGEBYSCORE', CDU, '(' .. ARGV[4], '+inf', 'WITHSCORES')
local out = {}
for i = 1, #ends, 2 do
  out[#out + 1] = ends[i]
  out[#out + 1] = ends[i + 1]
  out[#out + 1] = redis.call('HGET', CD, ends[i])
end
return out
