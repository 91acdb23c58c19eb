-- peek: ARGV[7], ARGV[8]: offset and count (at most BATCH) of ready jobs,
-- best first. Replies the jobs (one found gone is left out).
if can_write(STAT) then advance() end
local offset = tonumber(ARGV[7])
local count = math.min(tonumber(ARGV[8]), BATCH)
local jobs = {}
for _, m in ipairs(redis.call('ZRANGE', READY, offset, offset + count - 1)) do
  local job = read(m)
  if job then jobs[#jobs + 1] = job end
end
return respond(jobs)
