-- release: ARGV[7]: a job id. A processing job back to pending, ready now
-- and untried (its worker stopped: stop() past its grace). Replies 1, or
-- 0 when the job is not processing.
writable(STAT)
advance()
local m = member_of(ARGV[7])
if not m or number(m, 'status') ~= PROCESSING then return respond(0) end
release(m)
return respond(1)
