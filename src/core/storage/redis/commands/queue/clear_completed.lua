-- clear_completed: removes at most BATCH completed jobs per run. Replies
-- {how many went, how many were looked at, how many completed jobs are
-- left}.
writable(STAT)
advance()
local members = redis.call('ZRANGE', BY_STATUS[COMPLETED], 0, BATCH - 1)
local removed = 0
for _, m in ipairs(members) do
  if valid(m) then
    forget(m)
    removed = removed + 1
  end
end
return respond({removed, #members, redis.call('ZCARD', BY_STATUS[COMPLETED])})
