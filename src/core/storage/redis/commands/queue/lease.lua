-- lease: ARGV[7]: the worker's token for this lease (a lease whose reply
-- is lost is found by it and revoked), ARGV[8]: the member to lease ('' for
-- the best ready job). Replies the job; or, when the best ready job was
-- asked for and none is, when one may be next (idle_due: a time, or
-- false); false when the member asked for cannot be leased.
local token, wanted = ARGV[7], ARGV[8]
writable(STAT)
advance()
if wanted ~= '' then
  -- Given up on before it arrived (the worker's revoke came first).
  if redis.call('ZSCORE', REVOKED, token) then return respond(false) end
  if not redis.call('ZSCORE', READY, wanted) or not valid(wanted) then return respond(false) end
  return respond(lease(wanted, token))
end
local job = lease_best(token)
if job then return respond(job) end
if redis.call('ZCARD', READY) == 0 then return respond(idle_due()) end
return respond(false)
