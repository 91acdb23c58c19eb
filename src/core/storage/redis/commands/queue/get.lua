-- get: ARGV[7]: a job id. Replies the job, or false.
if can_write(STAT) then advance() end
local m = member_of(ARGV[7])
if not m then return respond(false) end
return respond(read(m) or false)
