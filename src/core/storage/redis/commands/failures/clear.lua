-- clear: ARGV[4]: 'all', or 'one' and ARGV[5] the service. The cooldowns
-- go too. 'all' forgets at most BATCH services, or the first few holding
-- CLEAR_FAILURES failures, per run. Replies {1 when
-- anything was held, 1 when more must go (the caller runs it again)}.
if ARGV[4] == 'one' then
  guard_services({ARGV[5]})
  writable(STAT)
  local benched = redis.call('ZREM', CDU, ARGV[5])
  redis.call('HDEL', CD, ARGV[5])
  local held, _, done = forget(ARGV[5], CLEAR_FAILURES)
  return {math.min(held + benched, 1), done and 0 or 1}
end
-- The least recently failed services, as many as hold CLEAR_FAILURES
-- failures together (one at least, whatever it holds: maxPerService).
local names = {}
local failures = 0
for _, name in ipairs(redis.call('ZRANGE', SVC, 0, BATCH - 1)) do
  if #names > 0 and failures >= CLEAR_FAILURES then break end
  guard(log_key(name), 'zset')
  failures = failures + redis.call('ZCARD', log_key(name))
  names[#names + 1] = name
end
guard_services(names)
writable(STAT)
local held = #names > 0 or redis.call('ZCARD', CDU) > 0 or redis.call('ZCARD', ALL) > 0
forget_all(names, CLEAR_FAILURES)
if redis.call('ZCARD', SVC) > 0 then return {1, 1} end
redis.call('UNLINK', ALL, REC, SVC, BYTES, RB, RS, CD, CDU)
return {held and 1 or 0, 0}
