-- clear_completed: removes at most CHANGE_BATCH completed jobs per run. Replies
-- {how many went, how many were looked at, how many completed jobs are
-- left}.
writable(STAT)
advance()
local members = redis.call('ZRANGE', BY_STATUS[COMPLETED], 0, CHANGE_BATCH - 1)
local removed = 0
for _, m in ipairs(members) do
  local job = read(m)
  if job then
    forget(m, job)
    removed = removed + 1
  end
end
return respond({removed, #members, redis.call('ZCARD', BY_STATUS[COMPLETED])})
