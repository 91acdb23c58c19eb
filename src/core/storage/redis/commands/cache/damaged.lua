-- damaged: ARGV[5..7]: digest, prompt, model id. The entry a hit just
-- served cannot be used: it goes, and the hit counts as a miss. Replies
-- 1 when it was held.
local digest = ARGV[5]
guard(entry(digest), 'hash')
if not is_key(digest) then return 0 end
writable(TOT)
remove(digest)
count('hits', -1)
count('misses', 1)
return 1
