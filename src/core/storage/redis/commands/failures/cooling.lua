-- cooling: ARGV[4..]: names. Replies with the end of each one's cooldown
-- (nil for none; the caller drops the ended ones).
local out = {}
for i = 4, #ARGV do out[#out + 1] = redis.call('ZSCORE', CDU, ARGV[i]) end
return out
