-- finish_lease: ARGV[7]: the worker's lease token, ARGV[8]: the job id,
-- ARGV[9]: 'complete' or 'fail', ARGV[10]: fail's error, ARGV[11]: a new
-- token to lease the next job under ('' for none). A worker's outcome
-- (as finish_leased), the job read back, and the next job leased, in one
-- run: one round trip a job for a busy worker, as BullMQ's moveToFinished
-- with its fetch of the next job.
--
-- The outcome is recorded before time is advanced: a lease that ran out
-- unnoticed is still the worker's (it knows the job ran, as keep_leases
-- says), while one that was noticed, and the job handed back or on, is
-- not. Replies {recorded (1 or 0), the job as it is now or false, the next
-- job or false, idle_due() when none was ready or false}.
local id, next_token = ARGV[8], ARGV[11]
writable(STAT)
local m = record_outcome(ARGV[7], id, ARGV[9], ARGV[10])
local recorded = m and 1 or 0
advance()
local now_held = false
if recorded == 1 then
  now_held = redis.call('HMGET', job_key(m), unpack(FIELDS))
else
  local held = member_of(id)
  if held then now_held = read(held) or false end
end
local next_job, due = false, false
if next_token ~= '' then
  next_job = lease_best(next_token)
  if not next_job and redis.call('ZCARD', READY) == 0 then due = idle_due() end
end
return respond({recorded, now_held, next_job, due})
