-- revoke: ARGV[7]: the token of a lease whose reply was lost (the worker
-- gave up waiting). The job it leased, if it arrived, goes back to
-- pending untried (its worker never had it: not a stall, not an attempt);
-- if it has not arrived yet, it is refused when it does. Replies 1 when a
-- job went back.
local token = ARGV[7]
writable(STAT)
redis.call('ZADD', REVOKED, now, token)
local over = redis.call('ZCARD', REVOKED) - REVOKED_MAX
if over > 0 then redis.call('ZREMRANGEBYRANK', REVOKED, 0, over - 1) end
local m = redis.call('HGET', TOKENS, token)
if not m then return respond(0) end
if not valid(m) or number(m, 'status') ~= PROCESSING or field(m, 'tok') ~= token then
  redis.call('HDEL', TOKENS, token)
  return respond(0)
end
release(m)
return respond(1)
