-- keep_leases: ARGV[7..]: the lease tokens of the jobs a worker is
-- running. Each job still under its token has its lease extended from now,
-- even one that ran out unnoticed (the worker knows the job is running),
-- so nothing is advanced first; a lease that was lost and handed on is
-- left to its new holder. Replies how many were kept.
writable(STAT)
local kept = 0
for i = 7, #ARGV do
  local m = redis.call('HGET', TOKENS, ARGV[i])
  local job = m and read(m)
  if job and tonumber(job[12]) == PROCESSING and job[19] == ARGV[i] then
    extend(m)
    kept = kept + 1
  end
end
return respond(kept)
