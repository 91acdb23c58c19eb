-- clear: every entry held is in "used". One run removes at most CLEAR_BATCH of
-- them, so that no run holds the server long; it replies 0 while entries
-- remain (the caller runs it again), then resets the counters and
-- replies 1. The bounds stay.
writable(TOT)
local batch = redis.call('ZRANGE', USED, 0, CLEAR_BATCH - 1)
for _, d in ipairs(batch) do
  if key_type(entry(d)) == 'hash' then redis.call('UNLINK', entry(d)) end
end
in_chunks(batch, function(...) redis.call('ZREM', USED, ...) end)
if redis.call('ZCARD', USED) > 0 then return 0 end
-- UNLINK: the sets may be large; the server frees them on another thread.
redis.call('UNLINK', LIVE, BORN, STALE, TOT)
return 1
