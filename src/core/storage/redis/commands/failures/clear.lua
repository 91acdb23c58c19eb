-- clear: ARGV[4]: 'all', or 'one' and ARGV[5] the service. The cooldowns
-- go too. 'all' forgets at most BATCH services per run. Replies {1 when
-- anything was held, 1 when more must go (the caller runs it again)}.
if ARGV[4] == 'one' then
  guard_services({ARGV[5]})
  writable(STAT)
  local benched = redis.call('ZREM', CDU, ARGV[5])
  redis.call('HDEL', CD, ARGV[5])
  return {math.min(forget(ARGV[5]) + benched, 1), 0}
end
local names = redis.call('ZRANGE', SVC, 0, BATCH - 1)
guard_services(names)
writable(STAT)
local held = #names > 0 or redis.call('ZCARD', CDU) > 0 or redis.call('ZCARD', ALL) > 0
for _, name in ipairs(names) do forget(name) end
if redis.call('ZCARD', SVC) > 0 then return {1, 1} end
redis.call('DEL', ALL, REC, SVC, BYTES, RB, RS, CD, CDU)
return {held and 1 or 0, 0}
