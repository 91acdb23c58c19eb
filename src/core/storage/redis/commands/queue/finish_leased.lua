-- finish_leased: ARGV[7]: the worker's lease token, ARGV[8]: the job id,
-- ARGV[9]: 'complete' or 'fail', ARGV[10]: fail's error. A worker's
-- outcome, recorded only while the job is processing under that lease
-- (found by its token, so a lost "ids" entry does not stop it). Replies 1
-- when recorded, 0 when not: the lease ran out meanwhile and the job went
-- back or on to another worker, or the outcome was recorded already.
writable(STAT)
advance()
if record_outcome(ARGV[7], ARGV[8], ARGV[9], ARGV[10]) then return respond(1) end
return respond(0)
