-- renew: ARGV[7]: a job id. Extends a processing job's lease from now;
-- replies 1, or 0 when the job is not processing (its lease may have run
-- out: time is advanced first).
writable(STAT)
advance()
local m = member_of(ARGV[7])
if not m or number(m, 'status') ~= PROCESSING then return respond(0) end
extend(m)
return respond(1)
