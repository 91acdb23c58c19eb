-- complete: ARGV[7]: a job id. A pending or processing job completed.
-- Replies 1, or 0 when the job is unknown, gone or finished.
writable(STAT)
advance()
local m = live_member(ARGV[7])
if not m then return respond(0) end
set_status(m, COMPLETED)
redis.call('HSET', job_key(m), 'updated', now)
place(m)
return respond(1)
