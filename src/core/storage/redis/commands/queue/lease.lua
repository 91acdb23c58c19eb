-- lease: ARGV[7]: the worker's token for this lease (a lease whose reply
-- is lost is found by it and revoked), ARGV[8]: the member to lease ('' for
-- the best ready job). Replies the job, or false.
local token, wanted = ARGV[7], ARGV[8]
writable(STAT)
advance()
-- Given up on before it arrived (the worker's revoke came first).
if redis.call('ZSCORE', REVOKED, token) then return respond(false) end
if wanted ~= '' then
  if not redis.call('ZSCORE', READY, wanted) or not valid(wanted) then return respond(false) end
  return respond(lease(wanted, token))
end
-- The best ready job; any found gone on the way is dropped.
for _ = 1, BATCH do
  local m = redis.call('ZRANGE', READY, 0, 0)[1]
  if not m then return respond(false) end
  if valid(m) then return respond(lease(m, token)) end
end
return respond(false)
