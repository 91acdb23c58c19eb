-- bench: ARGV[4]: the name, ARGV[5]: the cooldown's end, ARGV[6]: now
-- (both ms, as text, never through a Lua number), ARGV[7]: the reason. A
-- running cooldown is only ever lengthened; ended ones are dropped.
writable(STAT)
local name = ARGV[4]
local held = tonumber(redis.call('ZSCORE', CDU, name))
if held and held > tonumber(ARGV[6]) then
  if tonumber(ARGV[5]) > held then
    local since = string.match(redis.call('HGET', CD, name) or '', '^(%d+):') or ARGV[6]
    redis.call('ZADD', CDU, ARGV[5], name)
    redis.call('HSET', CD, name, since .. ':' .. ARGV[7])
  end
  fit_cooldowns(ARGV[6], 0)
  return 1
end
unbench({name})
fit_cooldowns(ARGV[6], 1)
if max_services > 0 then
  redis.call('ZADD', CDU, ARGV[5], name)
  redis.call('HSET', CD, name, ARGV[6] .. ':' .. ARGV[7])
end
return 1
