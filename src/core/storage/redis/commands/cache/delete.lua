-- delete: ARGV[5..7]: digest, prompt, model id. Replies 1 when the entry
-- was held.
local digest = ARGV[5]
guard(entry(digest), 'hash')
if not is_key(digest) then return 0 end
writable(TOT)
remove(digest)
return 1
