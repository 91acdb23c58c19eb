-- set: ARGV[5..9]: digest, prompt, model id, response, expires at;
-- ARGV[10..]: the instance's uses not yet counted (as for uses.lua),
-- counted before anything is evicted, so eviction follows this
-- instance's own lookups exactly. Replies {'OK', maxEntries, maxBytes} or {'TOO_LARGE', maxBytes}.
local digest = ARGV[5]
guard(entry(digest), 'hash')
local bytes = #ARGV[6] + #ARGV[8]
if bytes > max_bytes then
  if can_write(TOT) then note_uses(10) end
  return {'TOO_LARGE', max_bytes_text}
end
writable(TOT)
advance()
note_uses(10)
-- The key's old entry, or (a digest collision) another key's.
remove(digest)
redis.call('HSET', entry(digest), 'p', ARGV[6], 'm', ARGV[7], 'r', ARGV[8], 't', now,
  'x', ARGV[9], 'b', bytes)
touch(digest)
redis.call('ZADD', LIVE, ARGV[9], digest)
redis.call('ZADD', BORN, now, digest)
count('held', bytes)
count('live', bytes)
-- A set adds one entry: evicting for it is bounded by what it added,
-- unless the bounds were lowered (set_bound evicts those in runs).
enforce(BATCH)
return {'OK', max_entries_text, max_bytes_text}
