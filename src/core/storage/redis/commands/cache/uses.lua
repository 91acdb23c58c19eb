-- uses: ARGV[5..]: hits, misses, then the digests of the entries hit,
-- least recently used first: what lookups answered from an instance's
-- local copy or by a plain HMGET (cache_uses.rs) leave to be counted.
-- Replies 1, or 0 when the server takes no writes (the uses are then
-- not counted).
if not can_write(TOT) then return 0 end
advance()
note_uses(5)
return 1
