-- retry_failed: ARGV[7]: one id, or '' for the failed jobs, at most CHANGE_BATCH
-- per run. Each goes back to pending with a fresh retry and stall count.
-- Replies {how many went back, how many were looked at, how many failed
-- jobs are left} (the caller runs it again while some are left and the
-- last run looked at any).
writable(STAT)
advance()
local members = {}
if ARGV[7] == '' then
  members = redis.call('ZRANGE', BY_STATUS[FAILED], 0, CHANGE_BATCH - 1)
else
  local m = member_of(ARGV[7])
  if m and number(m, 'status') == FAILED then members[1] = m end
end
local revived = 0
for _, m in ipairs(members) do
  if valid(m) then
    set_status(m, PENDING)
    redis.call('HSET', job_key(m), 'retries', 0, 'stalls', 0, 'updated', now)
    redis.call('HDEL', job_key(m), 'next', 'fin')
    place(m)
    revived = revived + 1
  end
end
return respond({revived, #members, redis.call('ZCARD', BY_STATUS[FAILED])})
