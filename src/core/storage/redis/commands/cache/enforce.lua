-- enforce: evicts what the stored bounds no longer hold, at most BATCH
-- per run. Replies {evicted, 1 when more must go}.
writable(TOT)
advance()
local evicted, more = enforce(BATCH)
return {evicted, more and 1 or 0}
