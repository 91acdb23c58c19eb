-- stats: replies the counts of pending, processing, completed and failed
-- jobs and the bytes held (O(1) after advancing).
if can_write(STAT) then advance() end
return respond({
  redis.call('ZCARD', BY_STATUS[PENDING]), redis.call('ZCARD', BY_STATUS[PROCESSING]),
  redis.call('ZCARD', BY_STATUS[COMPLETED]), redis.call('ZCARD', BY_STATUS[FAILED]),
  held_bytes('all'),
})
