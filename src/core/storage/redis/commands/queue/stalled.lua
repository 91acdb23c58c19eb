-- stalled: ARGV[7]: a job id. A processing job whose worker ended (its
-- thread or process) while running it: a stall, back to pending untried,
-- or past maxStalls a failed attempt. Replies 1, or 0 when the job is not
-- processing.
writable(STAT)
advance()
local m = member_of(ARGV[7])
if not m or number(m, 'status') ~= PROCESSING then return respond(0) end
stall(m, false, now)
return respond(1)
