-- stats: ARGV[4], ARGV[5]: the first rank and how many services (a page,
-- so that no run holds the server long). Replies per service held: its
-- name, its oldest failure's m, how many it has, its newest failure's
-- timestamp.
local out = {}
local first_rank = tonumber(ARGV[4])
local services = redis.call('ZRANGE', SVC, first_rank, first_rank + math.min(tonumber(ARGV[5]), BATCH) - 1)
guard_services(services)
for _, name in ipairs(services) do
  local first = redis.call('ZRANGE', log_key(name), 0, 0)[1]
  local last = redis.call('ZRANGE', log_key(name), -1, -1)[1]
  if first then
    out[#out + 1] = {name, first, redis.call('ZCARD', log_key(name)),
      redis.call('ZSCORE', times_key(name), last)}
  end
end
return out
