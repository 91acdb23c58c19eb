-- finish_leased: ARGV[7]: the worker's lease token, ARGV[8]: the job id,
-- ARGV[9]: 'complete' or 'fail', ARGV[10]: fail's error. A worker's
-- outcome, recorded only while the job is processing under that lease
-- (found by its token, so a lost "ids" entry does not stop it). Replies 1
-- when recorded, 0 when not: the lease ran out meanwhile and the job went
-- back or on to another worker, or the outcome was recorded already.
local token = ARGV[7]
writable(STAT)
advance()
local m = redis.call('HGET', TOKENS, token)
if not m then return respond(0) end
local job = read(m)
if not job or tonumber(job[12]) ~= PROCESSING or job[19] ~= token or job[2] ~= ARGV[8] then
  return respond(0)
end
if ARGV[9] == 'complete' then
  set_status(m, COMPLETED)
  redis.call('HSET', job_key(m), 'updated', now)
  place(m)
else
  fail_attempt(m, ARGV[10], now)
end
return respond(1)
