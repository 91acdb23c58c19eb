-- fail: ARGV[7]: a job id, ARGV[8]: the error. A failed attempt of a
-- pending or processing job: pending after the backoff, or failed for
-- good. Replies 1, or 0 when the job is unknown, gone or finished.
writable(STAT)
advance()
local m = live_member(ARGV[7])
if not m then return respond(0) end
fail_attempt(m, ARGV[8], now)
return respond(1)
