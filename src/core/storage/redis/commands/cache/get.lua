-- get: ARGV[5..8]: digest, prompt, model id, '1' when a stale entry will
-- do. Replies the response, timestamp, expiry and '1' when stale, or nil.
--
-- The answer is read before anything is written and decided by the
-- entry's own expiry, so a server that refuses writes (out of memory, a
-- read-only user) still serves hits: only the bookkeeping (time's
-- changes, the counters, the recency) waits for a server that takes
-- writes.
local digest = ARGV[5]
guard(entry(digest), 'hash')
local found = redis.call('HMGET', entry(digest), 'p', 'm', 'r', 't', 'x')
local expires_at = tonumber(found[5])
local servable = found[1] == ARGV[6] and found[2] == ARGV[7] and expires_at ~= nil
local stale = '0'
if servable and expires_at < tonumber(now) then
  stale = '1'
  servable = ARGV[8] == '1' and expires_at >= purge_before
end
if can_write(TOT) then
  advance()
  if servable then
    count('hits', 1)
    touch(digest)
  else
    count('misses', 1)
  end
end
if not servable then return false end
return {found[3], found[4], found[5], stale}
