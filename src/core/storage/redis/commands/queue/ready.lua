-- ready: replies how many pending jobs are due now (advance() moves at
-- most BATCH delayed jobs per run; the rest that are due count too).
if can_write(STAT) then advance() end
return respond(redis.call('ZCARD', READY) + redis.call('ZCOUNT', DELAYED, '-inf', now))
