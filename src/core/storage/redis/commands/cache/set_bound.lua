-- set_bound: ARGV[5], ARGV[6]: the new maxEntries and maxBytes, for every
-- instance; ARGV[7..]: the instance's uses not yet counted (as for
-- uses.lua), counted first; then evicts what no longer fits, at most
-- BATCH per run.
-- Replies {evicted, 1 when more must go (the caller runs `enforce`)}.
writable(TOT)
redis.call('HSET', BOUND, 'maxEntries', ARGV[5], 'maxBytes', ARGV[6])
max_entries, max_bytes = tonumber(ARGV[5]), tonumber(ARGV[6])
advance()
note_uses(7)
local evicted, more = enforce(BATCH)
return {evicted, more and 1 or 0}
