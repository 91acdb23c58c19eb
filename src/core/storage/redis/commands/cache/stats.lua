-- stats: ARGV[5..]: uses not yet counted, as for uses.lua (none when
-- absent), counted first so that the reply includes them. Replies size, oldest, newest (nil when empty), hits, misses,
-- evictions, live bytes, maxEntries, maxBytes. O(log n): counters and the
-- ends of sorted sets, never a scan.
if can_write(TOT) then
  advance()
  note_uses(5)
end
local oldest = redis.call('ZRANGE', BORN, 0, 0, 'WITHSCORES')[2] or false
local newest = redis.call('ZREVRANGE', BORN, 0, 0, 'WITHSCORES')[2] or false
local counts = redis.call('HMGET', TOT, 'hits', 'misses', 'evictions', 'live')
return {redis.call('ZCOUNT', LIVE, now, '+inf'), oldest, newest, counts[1] or '0', counts[2] or '0',
  counts[3] or '0', counts[4] or '0', max_entries_text, max_bytes_text}
