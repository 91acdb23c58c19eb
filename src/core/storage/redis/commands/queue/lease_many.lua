-- lease_many: ARGV[7..]: a token for each job wanted (a worker filling its
-- free slots in one round trip; a lease whose reply is lost is revoked by
-- its token). Replies {the jobs leased, best first, under the tokens in
-- order; idle_due() when fewer were ready than asked, or false}.
writable(STAT)
advance()
local jobs = {}
for i = 7, #ARGV do
  local job = lease_best(ARGV[i])
  if not job then break end
  jobs[#jobs + 1] = job
end
local due = false
if #jobs < #ARGV - 6 and redis.call('ZCARD', READY) == 0 then due = idle_due() end
return respond({jobs, due})
